"""Streaming, verified, atomic download of the GiantMIDI archive from a path or URL.

fsspec opens local paths, `file://`, `http(s)://` and `s3://` alike. The bytes go to a temporary
file that is hashed as it is written and renamed over the target only once the checksum and the
zip directory check out, so a crash or a bad download never leaves a half-written zip in place.
"""

from __future__ import annotations

import hashlib
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import fsspec

from mta_pipeline.atomic import atomic_open

CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]


class ArchiveError(RuntimeError):
    """The archive cannot be fetched or is not the GiantMIDI zip; the message says what to do."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    sha256: str


def display_url(url: str) -> str:
    """The URL without credentials or query string (presigned URLs carry secrets there)."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def source_fingerprint(url: str) -> dict[str, str]:
    """Size and ETag or modification time of the source: cheap to ask, changes when it does."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise ArchiveError(
            f"GIANTMIDI_ARCHIVE_URL points to {display_url(url)}, which does not exist; "
            "set it to the path or URL of midis_v1.2.zip."
        ) from exc
    except Exception as exc:
        raise ArchiveError(
            f"cannot reach GIANTMIDI_ARCHIVE_URL {display_url(url)}: {type(exc).__name__}: {exc}"
        ) from exc
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return {"url": display_url(url), "size": str(info.get("size")), "stamp": str(stamp or "")}


def download(
    url: str, dest: Path, expected_sha256: str | None = None, progress: Progress | None = None
) -> Fetched:
    """Stream `url` to `dest` atomically, verify sha256 (when given) and that it is a zip: a bad
    or interrupted download never replaces the previous archive."""
    digest, size = hashlib.sha256(), 0
    try:
        with fsspec.open(url, "rb") as src, atomic_open(dest) as out:
            total = getattr(src, "size", None)
            last = time.monotonic()
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress and time.monotonic() - last > 2:
                    progress(size, total)
                    last = time.monotonic()
            out.flush()
            if progress:
                progress(size, size)
            sha = digest.hexdigest()
            if expected_sha256 and sha != expected_sha256.lower():
                raise ArchiveError(
                    f"archive sha256 is {sha}, but GIANTMIDI_ARCHIVE_SHA256 expects "
                    f"{expected_sha256}; the download is corrupt or the variable is wrong."
                )
            if not zipfile.is_zipfile(out.name):
                raise ArchiveError(
                    f"{display_url(url)} is not a zip archive ({size} bytes); "
                    "GIANTMIDI_ARCHIVE_URL must point to the GiantMIDI MIDI zip (midis_v1.2.zip)."
                )
    except FileNotFoundError as exc:
        raise ArchiveError(
            f"GIANTMIDI_ARCHIVE_URL points to {display_url(url)}, which does not exist; "
            "set it to the path or URL of midis_v1.2.zip."
        ) from exc
    return Fetched(dest, size, sha)
