"""Publishing a folder as one set (resources/folders.py), on local disk and on S3 (moto)."""

import errno
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import s3fs

from mta_pipeline.resources import folders
from mta_pipeline.resources.folders import MANIFEST, FolderFile, publish_folder
from mta_pipeline.resources.storage import LakeError, Storage


def files(**contents: str) -> dict[str, FolderFile]:
    """`data__b="x"` is the file `data/b`, `README_md` is `README.md`."""
    return {
        k.replace("__", "/").replace("_md", ".md"): FolderFile.of_bytes(v.encode())
        for k, v in contents.items()
    }


def tree(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }


def test_local_publish_writes_what_changed_and_links_the_rest(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    root = tmp_path / "lake" / "release"
    assert publish_folder(storage, "release", files(a="1", data__b="2")) == ["a", "data/b"]
    assert tree(root) == {"a": "1", "data/b": "2"}
    inode = (root / "data/b").stat().st_ino
    assert publish_folder(storage, "release", files(a="1", data__b="2")) == []
    assert publish_folder(storage, "release", files(a="9", data__b="2", c="3")) == ["a", "c"]
    assert tree(root) == {"a": "9", "data/b": "2", "c": "3"}
    assert (root / "data/b").stat().st_ino == inode  # unchanged: hard-linked, not copied
    assert publish_folder(storage, "release", files(a="9")) == ["c", "data/b"]
    assert tree(root) == {"a": "9"}


def test_a_file_deleted_by_hand_comes_back(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    publish_folder(storage, "release", files(a="1", b="2"))
    (tmp_path / "lake" / "release" / "b").unlink()
    assert publish_folder(storage, "release", files(a="1", b="2")) == ["b"]
    assert tree(tmp_path / "lake" / "release") == {"a": "1", "b": "2"}


def test_a_crash_before_the_swap_keeps_the_old_set_and_no_staging(tmp_path, monkeypatch):
    storage = Storage(data_dir=str(tmp_path))
    root = tmp_path / "lake" / "release"
    publish_folder(storage, "release", files(a="1", b="2"))

    def disk_full():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folders.os, "sync", disk_full)
    with pytest.raises(LakeError, match="No space left"):
        publish_folder(storage, "release", files(a="new", b="new"))
    assert tree(root) == {"a": "1", "b": "2"}
    assert sorted(p.name for p in root.parent.iterdir()) == [".release.lock", "release"]


def test_overlapping_publishes_never_leave_a_manifest_that_lies(tmp_path, monkeypatch):
    """The manifest is read under the lock: a publish that waited for another sees its result."""
    storage = Storage(data_dir=str(tmp_path))
    root = tmp_path / "lake" / "release"
    publish_folder(storage, "release", files(a="0"))
    first_inside, release_first = threading.Event(), threading.Event()
    real_sync = os.sync

    def slow_sync():
        if threading.current_thread().name == "first":
            first_inside.set()
            release_first.wait(10)
        real_sync()

    monkeypatch.setattr(folders.os, "sync", slow_sync)
    first = threading.Thread(
        target=publish_folder, args=(storage, "release", files(a="1")), name="first"
    )
    first.start()
    assert first_inside.wait(10)
    second = threading.Thread(target=publish_folder, args=(storage, "release", files(a="0")))
    second.start()
    release_first.set()
    first.join(10)
    second.join(10)
    manifest = json.loads((root / MANIFEST).read_text())
    assert (root / "a").read_text() == "0" and manifest["a"] == FolderFile.of_bytes(b"0").sha256


def test_s3_publish_uploads_changes_and_deletes_everything_else(tmp_path, s3_endpoint):
    storage = Storage(data_dir=str(tmp_path), lake_url="s3://lake/x", s3_endpoint_url=s3_endpoint)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)

    def listing():
        fs.invalidate_cache()
        return sorted(p.removeprefix("lake/x/release/") for p in fs.find("lake/x/release"))

    assert publish_folder(storage, "release", files(README_md="c", data__t1="1")) == [
        "README.md",
        "data/t1",
    ]
    assert publish_folder(storage, "release", files(README_md="c", data__t1="1")) == []
    fs.pipe("lake/x/release/data/orphan", b"left by a crash")  # not in any manifest
    fs.rm("lake/x/release/data/t1")  # deleted by hand
    changed = publish_folder(storage, "release", files(README_md="c", data__t1="1", t2="2"))
    assert changed == ["data/orphan", "data/t1", "t2"]
    assert listing() == [MANIFEST, "README.md", "data/t1", "t2"]
    assert fs.cat("lake/x/release/data/t1") == b"1"


# -- a failure on any file leaves the previous set whole ---------------------------------------

OLD = {
    "midi_text_dataset.tsv": "old rows",
    "data/default/train-00000-of-00002.parquet": "old part 1",
    "data/default/train-00001-of-00002.parquet": "old part 2",
    "midi/a.mid": "a",
    "README.md": "old card",
}
NEW = {  # in the release asset's order: the card is the last file of the set
    "midi_text_dataset.tsv": "new rows",
    "data/default/train-00000-of-00001.parquet": "new part",
    "midi/a.mid": "a",
    "midi/b.mid": "b",
    "README.md": "new card",
}


def as_files(contents: dict[str, str]) -> dict[str, FolderFile]:
    return {rel: FolderFile.of_bytes(text.encode()) for rel, text in contents.items()}


def the_set(contents: dict[str, str]) -> dict[str, str]:
    """What the folder holds once `contents` is published: the files and their manifest."""
    shas = {rel: f.sha256 for rel, f in as_files(contents).items()}
    return {**contents, MANIFEST: folders._manifest_bytes(shas).decode()}


def local_set(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["midi_text_dataset.tsv", "midi/b.mid", "README.md", MANIFEST])
def test_local_a_failed_write_of_any_file_leaves_the_previous_set_whole(
    tmp_path, monkeypatch, failing
):
    """First, middle and last file of the set (the card), and the manifest (the last write)."""
    storage = Storage(data_dir=str(tmp_path))
    root = tmp_path / "lake" / "release"
    publish_folder(storage, "release", as_files(OLD))
    real_write = Path.write_bytes

    def write_bytes(path: Path, data: bytes) -> int:
        if str(path).endswith(f"/{failing}"):  # wherever the publisher writes it
            raise enospc()
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    with pytest.raises(LakeError, match="No space left"):
        publish_folder(storage, "release", as_files(NEW))
    monkeypatch.undo()
    assert local_set(root) == the_set(OLD)
    assert sorted(os.listdir(root.parent)) == [".release.lock", "release"]
    publish_folder(storage, "release", as_files(NEW))
    assert local_set(root) == the_set(NEW)


def s3_set(fs: s3fs.S3FileSystem, prefix: str) -> dict[str, str]:
    fs.invalidate_cache()
    try:
        return {p.removeprefix(f"{prefix}/"): fs.cat(p).decode() for p in fs.find(prefix)}
    except FileNotFoundError:
        return {}


def fail_s3_requests(
    monkeypatch: pytest.MonkeyPatch, storage: Storage, fails: Callable[[str, str], bool]
) -> None:
    """Make every request of the lake's S3 client for which `fails(method, key)` raise ENOSPC
    (what S3-compatible servers answer when their disk is full)."""
    fs, _ = storage.filesystem()
    real = fs._call_s3

    async def call(method, *kwarg_dicts, **kwargs):
        params = {k: v for d in kwarg_dicts for k, v in d.items()} | kwargs
        if fails(method, params.get("Key", "")):
            raise enospc()
        return await real(method, *kwarg_dicts, **kwargs)

    monkeypatch.setattr(fs, "_call_s3", call)


@pytest.fixture
def s3_lake(tmp_path, s3_endpoint) -> tuple[Storage, s3fs.S3FileSystem]:
    storage = Storage(data_dir=str(tmp_path), lake_url="s3://lake/x", s3_endpoint_url=s3_endpoint)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    return storage, fs


def test_s3_a_failed_upload_leaves_the_previous_set_whole(s3_lake):
    """Every byte is staged outside the folder first: a failure uploading the first file, the
    card or the manifest (the last upload) changes nothing a reader sees."""
    storage, fs = s3_lake
    publish_folder(storage, "release", as_files(OLD))
    for failing in ["data/default/train-00000-of-00001.parquet", "README.md", MANIFEST]:
        with pytest.MonkeyPatch.context() as mp:
            fail_s3_requests(
                mp, storage, lambda m, key, f=failing: m == "put_object" and key.endswith(f)
            )
            with pytest.raises(LakeError, match=r"cannot write s3://lake/x/release/.*unchanged"):
                publish_folder(storage, "release", as_files(NEW))
        assert s3_set(fs, "lake/x/release") == the_set(OLD), failing
        assert s3_set(fs, "lake/x/.release-staging") == {}  # a failed publish removes its own
    publish_folder(storage, "release", as_files(NEW))
    assert s3_set(fs, "lake/x/release") == the_set(NEW)
    assert s3_set(fs, "lake/x/.release-staging") == {}


def nth_change_in_release(n: int) -> Callable[[str, str], bool]:
    """True for the n-th request (from 0) that writes or deletes an object under `x/release/`."""
    count = itertools.count()
    changes = ("put_object", "copy_object", "delete_object", "delete_objects")
    return lambda method, key: (
        method in changes and key.startswith("x/release/") and next(count) == n
    )


def test_s3_a_failure_while_copying_in_never_puts_a_card_beside_another_builds_data(s3_lake):
    """S3 has no multi-object transaction: a failure at any step after staging may leave data
    files of two builds, but never the new card beside old data or beside a removed file (its
    globs would read it); and the next publish, whatever it holds, repairs the folder."""
    storage, fs = s3_lake
    for step in itertools.count():
        publish_folder(storage, "release", as_files(OLD))
        assert s3_set(fs, "lake/x/release") == the_set(OLD), step  # repaired
        with pytest.MonkeyPatch.context() as mp:
            fail_s3_requests(mp, storage, nth_change_in_release(step))
            try:
                publish_folder(storage, "release", as_files(NEW))
                break  # every step has failed once
            except LakeError:
                pass
        seen = s3_set(fs, "lake/x/release")
        if seen["README.md"] == NEW["README.md"]:
            assert {r: t for r, t in seen.items() if r != MANIFEST} == NEW, step
    # the manifest emptied of what changes, three data files, two removals, the card, the manifest
    assert step == 8
    assert s3_set(fs, "lake/x/release") == the_set(NEW)
    assert s3_set(fs, "lake/x/.release-staging") == {}


def test_s3_staging_left_by_a_crash_is_removed_but_a_running_publishs_is_not(s3_lake):
    storage, fs = s3_lake
    running = time.strftime(folders.STAGING_STAMP, time.gmtime()) + "-running"
    fs.pipe("lake/x/.release-staging/20000101T000000Z-crashed/midi/b.mid", b"b")
    fs.pipe(f"lake/x/.release-staging/{running}/midi/b.mid", b"b")
    publish_folder(storage, "release", as_files(NEW))
    assert list(s3_set(fs, "lake/x/.release-staging")) == [f"{running}/midi/b.mid"]
