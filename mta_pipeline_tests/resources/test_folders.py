"""Publishing a folder as one set (resources/folders.py), on local disk and on S3 (moto)."""

import json
import os
import threading

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
