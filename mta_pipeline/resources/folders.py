"""Publishing a folder of files (the release) as one set, locally or on S3.

A manifest (`.manifest.json`: relative path → sha256) records what the folder holds, so a rebuild
writes only the files whose content changed and says which.

- Local lake: the new folder is assembled beside the old one (unchanged files hard-linked from it,
  so a rebuild costs only what changed), synced, and swapped in with two renames under a file
  lock (the manifest is read under it too). A reader sees the old set or the new set, never a
  mix (between the renames, for an instant, no folder); a crash leaves the old folder (or,
  between the two renames, `.<name>.previous-*`, which the next publish puts back).
- S3 has no multi-object transaction: changed or missing files are uploaded first, the card
  (`README.md`) and the manifest last, then every object under the prefix that is not in the set
  is deleted (found by listing, so files left by a crash or a lost manifest go too). Every object
  is whole and the card never names a data file that is not there yet.
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
    (empty: nothing was written). A file missing from the folder counts as changed, whatever the
    manifest says, so a file deleted by hand comes back."""
    new = {rel: f.sha256 for rel, f in files.items()}
    fs, root = storage.filesystem()
    if isinstance(fs, LocalFileSystem):
        return _publish_local(storage, name, Path(root) / name, files, new)
    prefix = f"{root}/{name}"
    try:
        present = {p.removeprefix(prefix + "/") for p in fs.find(prefix)}
    except FileNotFoundError:
        present = set()
    old = read_manifest(storage, name)
    upload = sorted(
        (r for r in new if old.get(r) != new[r] or r not in present), key=lambda r: (r in LAST, r)
    )
    stale = sorted(present - set(new) - {MANIFEST})  # left by a crash or a lost manifest too
    if not upload and not stale and MANIFEST in present:
        return []
    for rel in upload:
        storage.write(f"{name}/{rel}", files[rel].read())
    storage.write(f"{name}/{MANIFEST}", _manifest_bytes(new))
    for rel in stale:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{prefix}/{rel}")
    return sorted({*upload, *stale})


def _manifest_bytes(new: Mapping[str, str]) -> bytes:
    return (json.dumps(dict(sorted(new.items())), indent=1) + "\n").encode()


def _publish_local(
    storage: Storage,
    name: str,
    target: Path,
    files: Mapping[str, FolderFile],
    new: Mapping[str, str],
) -> list[str]:
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(parent / f".{target.name}.lock"), timeout=storage.lock_timeout_s):
            _recover(target)
            old = read_manifest(storage, name)  # under the lock: no publish in between
            on_disk = {rel for rel in old if (target / rel).is_file()}
            changed = sorted(
                {r for r in new if old.get(r) != new[r] or r not in on_disk} | (set(old) - set(new))
            )
            if not changed and target.is_dir():
                return []
            _swap(target, files, old, on_disk)
            return changed
    except OSError as exc:
        raise LakeError(f"cannot publish {target}: {type(exc).__name__}: {exc}") from exc


def _swap(
    target: Path, files: Mapping[str, FolderFile], old: Mapping[str, str], on_disk: set[str]
) -> None:
    """Assemble the new folder beside `target`, sync it, and swap it in with two renames."""
    parent = target.parent
    staging = parent / f".{target.name}.staging-{uuid.uuid4().hex}"
    previous = parent / f".{target.name}.previous-{uuid.uuid4().hex}"
    try:
        for rel, file in files.items():
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if old.get(rel) == file.sha256 and rel in on_disk:
                try:
                    os.link(target / rel, dst)  # release files are never edited in place
                    continue
                except OSError:
                    pass  # another filesystem, or no hard links: copy
            dst.write_bytes(file.read())
        (staging / MANIFEST).write_bytes(_manifest_bytes({r: f.sha256 for r, f in files.items()}))
        os.sync()  # every new file on disk before the swap makes it visible
        if target.exists():
            os.rename(target, previous)
        try:
            os.rename(staging, target)
        except OSError:
            if previous.exists() and not target.exists():
                os.rename(previous, target)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)


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
