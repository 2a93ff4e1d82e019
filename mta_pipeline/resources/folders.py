"""Publishing a folder of files (the release) as one set, locally or on S3.

A manifest (`.manifest.json`: relative path → sha256) records what the folder holds, so a rebuild
writes only the files whose content changed and says which.

- Local lake: the new folder is assembled beside the old one (unchanged files hard-linked from it,
  so a rebuild costs only what changed), synced, and swapped in with two renames under a file
  lock. A reader sees the old set or the new set, never a mix; a crash leaves the old folder (or,
  between the two renames, `.<name>.previous-*`, which the next publish puts back).
- S3 has no multi-object transaction: changed files are uploaded first, the card (`README.md`)
  and the manifest last, and files no longer in the set deleted after, so every object is whole
  and the card never names a data file that is not there yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from fsspec.implementations.local import LocalFileSystem

from mta_pipeline.resources.storage import LakeError, Storage

MANIFEST = ".manifest.json"
LAST = ("README.md", MANIFEST)  # written after every data file on S3


@dataclass(frozen=True)
class FolderFile:
    """A file of the set: its sha256 and how to get its bytes (read only when it changed)."""

    sha256: str
    read: Callable[[], bytes]

    @classmethod
    def of_bytes(cls, data: bytes) -> FolderFile:
        return cls(hashlib.sha256(data).hexdigest(), lambda: data)

    @classmethod
    def of_path(cls, path: Path, sha256: str) -> FolderFile:
        return cls(sha256, path.read_bytes)


def read_manifest(storage: Storage, name: str) -> dict[str, str]:
    body = storage.read_bytes(f"{name}/{MANIFEST}")
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return {}  # a damaged manifest: every file is rewritten


def publish_folder(storage: Storage, name: str, files: Mapping[str, FolderFile]) -> list[str]:
    """Make `<lake>/<name>/` hold exactly `files`; returns the paths added, changed or removed
    (empty: nothing was written)."""
    old = read_manifest(storage, name)
    new = {rel: f.sha256 for rel, f in files.items()}
    changed = sorted({r for r in new if old.get(r) != new[r]} | (set(old) - set(new)))
    fs, root = storage.filesystem()
    if isinstance(fs, LocalFileSystem):
        target = Path(root) / name
        if not changed and target.is_dir():
            return []
        _swap_local(target, files, old, new, storage.lock_timeout_s)
        return changed
    if not changed:
        return []
    order = sorted((r for r in new if old.get(r) != new[r]), key=lambda r: (r in LAST, r))
    for rel in order:
        storage.write(f"{name}/{rel}", files[rel].read())
    storage.write(f"{name}/{MANIFEST}", _manifest_bytes(new))
    for rel in sorted(set(old) - set(new)):
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{root}/{name}/{rel}")
    return changed


def _manifest_bytes(new: Mapping[str, str]) -> bytes:
    return (json.dumps(dict(sorted(new.items())), indent=1) + "\n").encode()


def _swap_local(
    target: Path,
    files: Mapping[str, FolderFile],
    old: Mapping[str, str],
    new: Mapping[str, str],
    lock_timeout_s: float,
) -> None:
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(parent / f".{target.name}.lock"), timeout=lock_timeout_s):
            _recover(target)
            staging = parent / f".{target.name}.staging-{uuid.uuid4().hex}"
            try:
                for rel, file in files.items():
                    dst = staging / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    current = target / rel
                    if old.get(rel) == file.sha256 and current.is_file():
                        try:
                            os.link(current, dst)  # release files are never edited in place
                            continue
                        except OSError:
                            pass
                    dst.write_bytes(file.read())
                (staging / MANIFEST).write_bytes(_manifest_bytes(new))
                os.sync()  # every new file on disk before the swap makes it visible
                previous = parent / f".{target.name}.previous-{uuid.uuid4().hex}"
                if target.exists():
                    os.rename(target, previous)
                os.rename(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            shutil.rmtree(previous, ignore_errors=True)
    except OSError as exc:
        raise LakeError(f"cannot publish {target}: {type(exc).__name__}: {exc}") from exc


def _recover(target: Path) -> None:
    """Put back a folder a crash left renamed aside, and drop abandoned staging folders (the
    lock is held: no other publish is running)."""
    parent = target.parent
    previous = sorted(parent.glob(f".{target.name}.previous-*"))
    if not target.exists() and previous:
        os.rename(previous[-1], target)
        previous = previous[:-1]
    for stale in [*previous, *parent.glob(f".{target.name}.staging-*")]:
        shutil.rmtree(stale, ignore_errors=True)
