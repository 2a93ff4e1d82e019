"""Streaming, verified, atomic download of the GiantMIDI archive from a path or URL.

fsspec opens local paths, `file://`, `http(s)://` and `s3://` alike. The bytes go to a temporary
file that is hashed as it is written and renamed over the target only once the checksum and the
zip directory check out, so a crash or a bad download never leaves a half-written zip in place.

A source URL may carry credentials or a signature, and fsspec and aiohttp quote it in their
exception messages (fsspec also wraps every HTTP failure, a 500 as much as a 404, in
`FileNotFoundError(url)`). Dagster stores an asset failure with its whole `__cause__` and
`__context__` chain, so a failure to read a source is raised `from None` as one `ArchiveError`
whose message already holds the precise, redacted cause (`describe_failure`).
"""

from __future__ import annotations

import hashlib
import socket
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import aiohttp
import fsspec

from mta_pipeline import config
from mta_pipeline.atomic import atomic_open
from mta_pipeline.core.redact import redact_text, redact_url, url_host

CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]
# aiohttp 3.10+ raises ClientConnectorDNSError; older ones chain the socket.gaierror alone.
DNS_ERRORS = (socket.gaierror, getattr(aiohttp, "ClientConnectorDNSError", socket.gaierror))
S3_DENIED = {
    "403",
    "AccessDenied",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
}
S3_MISSING = {"404", "NoSuchKey"}


class ArchiveError(RuntimeError):
    """The archive cannot be fetched or is not the GiantMIDI zip; the message says what to do."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    sha256: str


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it, outermost first, as Python prints (and Dagster stores) them."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
    return chain


def http_reason(status: int) -> str:
    """What an HTTP error status means for a download, and what to do about it."""
    try:
        head = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status outside the standard's list
        head = f"HTTP {status}"
    if status == 401:
        return f"{head}: the server wants credentials or refused the ones in the URL; check them"
    if status == 403:
        return f"{head}: access denied; check the credentials, or sign a new URL if it expired"
    if status in (404, 410):
        return f"{head}: nothing at this URL; check the path and file name"
    if status == 429:
        return f"{head}: the server is rate-limiting; try again later"
    if status >= 500:
        return f"{head}: the server failed; try again later"
    return f"{head}: the server refused the request; check the URL"


def s3_reason(code: str) -> str:
    """What an S3 error code means for a download (the server's own text is not repeated)."""
    if code in S3_DENIED:
        return (
            f"S3 {code}: access denied; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the "
            "bucket's policy"
        )
    if code == "NoSuchBucket":
        return f"S3 {code}: no such bucket; check the bucket name and the S3 endpoint"
    if code in S3_MISSING:
        return f"S3 {code}: no object at this key; check the path in the URL"
    return f"S3 error {code}; try again later"


def _has_s3_response(exc: BaseException) -> bool:
    """botocore's ClientError (kept by s3fs as the cause) carries the S3 error code here."""
    return isinstance(getattr(exc, "response", None), dict)


def failure_reason(exc: BaseException, url: str) -> str:
    """The precise cause of a failure to read `url`, from the whole exception chain, with what to
    do; quotes no secret (foreign text is passed through `redact_text`)."""
    chain = _chain(exc)
    host = url_host(url) or "the host"
    response = next((e for e in chain if isinstance(e, aiohttp.ClientResponseError)), None)
    if response is not None:
        return http_reason(response.status)
    codes = [e.response.get("Error", {}).get("Code") for e in chain if _has_s3_response(e)]
    if code := next((str(c) for c in codes if c), None):
        return s3_reason(code)
    if any(isinstance(e, DNS_ERRORS) for e in chain):
        return f"{host} does not resolve (DNS lookup failed); check the host name and the network"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused by {host}; check the host and port, and that the server runs"
    if any(isinstance(e, TimeoutError) for e in chain):
        return f"timed out talking to {host}; the server or the network is slow or down, try again"
    root = chain[-1]
    filename = getattr(root, "filename", None)
    if filename is None or str(filename) in url:  # about the source, not the file written
        if isinstance(root, PermissionError):
            return "permission denied; make it readable by the user running the pipeline"
        if isinstance(root, IsADirectoryError):
            return "this is a folder; point to the file itself"
        if isinstance(root, FileNotFoundError):
            return "not found; check the path or URL"
    text = " ".join(redact_text(str(root)).split())[:300]
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def describe_failure(exc: BaseException, variable: str, url: str) -> str:
    """One line for a user: the setting, the source without its secrets, the precise cause."""
    return redact_text(f"{variable} {redact_url(url)}: {failure_reason(exc, url)}.")


def source_fingerprint(url: str, variable: str = config.GIANTMIDI_ARCHIVE_URL) -> dict[str, str]:
    """Size and ETag or modification time of the source: cheap to ask, changes when it does."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        info = fs.info(path)
    except Exception as exc:
        raise ArchiveError(describe_failure(exc, variable, url)) from None
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return {"url": redact_url(url), "size": str(info.get("size")), "stamp": str(stamp or "")}


def read_bytes(url: str, variable: str = config.GIANTMIDI_METADATA_URL) -> bytes:
    """The whole file at `url` (the metadata CSV); a failure is an ArchiveError naming
    `variable` and the precise cause, with no secret in it or in its chain."""
    try:
        with fsspec.open(url, "rb") as fh:
            return fh.read()
    except Exception as exc:
        raise ArchiveError(describe_failure(exc, variable, url)) from None


def download(
    url: str, dest: Path, expected_sha256: str | None = None, progress: Progress | None = None
) -> Fetched:
    """Stream `url` to `dest` atomically, verify sha256 (when given) and that it is a zip: a bad
    or interrupted download never replaces the previous archive."""
    try:
        return _download(url, dest, expected_sha256, progress)
    except ArchiveError:
        raise
    except OSError as exc:
        if _is_ours(exc.filename, dest):  # writing the archive, not reading the source
            raise ArchiveError(
                f"cannot write the archive under {dest.parent}: {exc.strerror}; free space in "
                f"(or fix the permissions of) that folder ({config.MTA_LAKE_URL} for a local "
                f"lake, {config.MTA_DATA_DIR} for an S3 one)"
            ) from None
        raise ArchiveError(describe_failure(exc, config.GIANTMIDI_ARCHIVE_URL, url)) from None
    except Exception as exc:
        raise ArchiveError(describe_failure(exc, config.GIANTMIDI_ARCHIVE_URL, url)) from None


def _is_ours(filename: object, dest: Path) -> bool:
    """Whether an OSError's file is `dest` or its temporary name (atomic_open's `.<name>.*`)."""
    path = Path(str(filename)) if filename else None
    return path is not None and path.parent == dest.parent and dest.name in path.name


def _download(
    url: str, dest: Path, expected_sha256: str | None, progress: Progress | None
) -> Fetched:
    digest, size = hashlib.sha256(), 0
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
                f"{redact_url(url)} is not a zip archive ({size} bytes); "
                "GIANTMIDI_ARCHIVE_URL must point to the GiantMIDI MIDI zip (midis_v1.2.zip)."
            )
    return Fetched(dest, size, sha)
