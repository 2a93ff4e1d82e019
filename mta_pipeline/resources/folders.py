"""Publishing a folder of files (the release) as one set, locally or on S3.

A manifest (`.manifest.json`: relative path → sha256) records what the folder holds, so a rebuild
writes only the files whose content changed and says which.

- Local lake: the new folder is assembled beside the old one (unchanged files hard-linked from it,
  so a rebuild costs only what changed), synced, and swapped in with two renames under a file
  lock (the manifest is read under it too). A reader sees the old set or the new set, never a
  mix (between the renames, for an instant, no folder); a crash leaves the old folder (or,
  between the two renames, `.<name>.previous-*`, which the next publish puts back).
- S3 has no multi-object transaction, so the bytes travel before anything changes: every new or
  changed file and the new manifest are uploaded to `<lake>/.<name>-staging/<build>/` (outside
  the folder: a reader never sees them). That is where a network, quota or disk-full failure
  happens, and it leaves the folder untouched. Then the folder's manifest forgets the files about
  to change, and the staged files are copied in server-side: data files, then every object not
  in the set deleted (found by listing, so files left by a crash or a lost manifest go too), then
  the card (`README.md`), then the manifest. So the card of a build is never beside data of
  another, nor beside a removed file its globs would match. A failure in that short copy phase
  can leave old and new data files side by side under the old card; the next publish, whatever
  it holds, repairs it (the manifest no longer vouches for them). A failed publish removes its
  staging; one a crash left is removed by a publish a day later.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from mta_pipeline.resources.storage import LakeError, Storage

MANIFEST = ".manifest.json"
LAST = ("README.md", MANIFEST)  # copied in after every data file on S3
# A staging build older than this was left by a publish that crashed; a younger one may belong
# to a publish still running elsewhere.
STAGING_GRACE_S = 24 * 3600
STAGING_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class FolderFile:
    """A file of the set: its sha256 and how to get its bytes (read only when it changed)."""

    sha256: str
    read: Callable[[], bytes]

    @classmethod
    def of_bytes(cls, data: bytes) -> FolderFile:
        return cls(hashlib.sha256(data).hexdigest(), lambda: data)


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
    return _publish_s3(storage, name, files, new)


def _publish_s3(
    storage: Storage, name: str, files: Mapping[str, FolderFile], new: Mapping[str, str]
) -> list[str]:
    fs, root = storage.filesystem()
    prefix = f"{root}/{name}"
    _drop_abandoned_staging(fs, f"{root}/.{name}-staging")
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
    staging = f".{name}-staging/{time.strftime(STAGING_STAMP, time.gmtime())}-{uuid.uuid4().hex}"
    staged = False
    try:
        manifest = {MANIFEST: FolderFile.of_bytes(_manifest_bytes(new))}
        for rel, file in ({r: files[r] for r in upload} | manifest).items():
            try:
                storage.write(f"{staging}/{rel}", file.read())
                staged = True
            except LakeError as exc:
                raise LakeError(
                    f"cannot write {storage.uri(f'{name}/{rel}')}; {storage.uri(name)} is "
                    f"unchanged. {exc}"
                ) from exc
        try:
            # The manifest forgets the files about to change, so whatever the next publish is,
            # it rewrites every file a failure below may leave from this build.
            known = {r: sha for r, sha in old.items() if r not in upload}
            storage.write(f"{name}/{MANIFEST}", _manifest_bytes(known))
            _copy_in(fs, f"{root}/{staging}", prefix, upload, stale)
        except Exception as exc:
            raise LakeError(
                f"cannot publish {storage.uri(name)}: {type(exc).__name__}: {exc}. Its data files "
                "may mix two builds (under the old card) until the next publish, which repairs it."
            ) from exc
    finally:
        with contextlib.suppress(Exception):  # else a later publish removes it
            if staged:
                fs.rm(f"{root}/{staging}", recursive=True)
    return sorted({*upload, *stale})


def _copy_in(
    fs: AbstractFileSystem, src: str, dst: str, upload: list[str], stale: list[str]
) -> None:
    """Copy the staged files into the folder server-side: data files (concurrently: the window
    in which the folder mixes builds is short), then deletions, then the card, then the
    manifest."""
    data = [r for r in upload if r not in LAST]
    if data:
        fs.copy([f"{src}/{r}" for r in data], [f"{dst}/{r}" for r in data])
    for rel in stale:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{dst}/{rel}")
    for rel in [*(r for r in upload if r in LAST), MANIFEST]:
        fs.cp_file(f"{src}/{rel}", f"{dst}/{rel}")


def _drop_abandoned_staging(fs: AbstractFileSystem, staging_root: str) -> None:
    """Remove staging builds older than STAGING_GRACE_S (a younger one may be another publish's,
    still running)."""
    try:
        builds = fs.ls(staging_root, detail=False)
    except FileNotFoundError:
        return
    cutoff = time.time() - STAGING_GRACE_S
    for build in builds:
        stamp = build.rstrip("/").rsplit("/", 1)[-1].split("-", 1)[0]
        try:
            started = calendar.timegm(time.strptime(stamp, STAGING_STAMP))
        except ValueError:
            started = 0  # not a name we give: nothing of ours is running there
        if started < cutoff:
            with contextlib.suppress(Exception):  # best effort: the next publish tries again
                fs.rm(build, recursive=True)


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
