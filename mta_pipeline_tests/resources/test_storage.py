"""The storage layer: atomic lake and local writes, compare-then-write publishing, the catalog
under parallel writers, and the lake on S3 (moto's server over real HTTP)."""

import errno
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import mta_pipeline.atomic
from mta_pipeline import config, lake_index, schemas
from mta_pipeline.resources.storage import LakeError, Storage

TABLE = pa.table({"vid": ["abcdefghijk"], "n": [1]})
OLD = b"old bytes, whole " * 64
NEW = b"new bytes, longer than the old ones " * 64


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def shard_table(n: list[int], shard: str = "00") -> pa.Table:
    return pa.table({"shard": [shard] * len(n), "n": n})


# -- the lake: round trips and errors --------------------------------------------------------------


def test_local_write_read_round_trip_leaves_no_temporary_files(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    relpath = storage.table_path("t", "00")
    uri = storage.write_parquet(relpath, TABLE)
    assert uri == f"{tmp_path.resolve()}/lake/t/shard=00/part.parquet"
    assert storage.read(relpath).equals(TABLE)
    assert storage.read(storage.table_path("t", "01")) is None
    assert files_under(tmp_path) == ["lake/t/shard=00/part.parquet"]


def test_unwritable_lake_fails_with_the_location_and_the_setting(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    os.chmod(root, 0o500)
    try:
        storage = Storage(data_dir=str(tmp_path / "data"), lake_url=str(root))
        if os.access(root, os.W_OK):  # running as root: permissions do not bind
            (tmp_path / "file").write_text("not a folder")
            storage = Storage(data_dir=str(tmp_path / "data"), lake_url=str(tmp_path / "file"))
        expected = rf"cannot write {re.escape(storage.uri('t/x.parquet'))}: .*MTA_LAKE_URL"
        with pytest.raises(LakeError, match=expected):
            storage.write_parquet("t/x.parquet", TABLE)
    finally:
        os.chmod(root, 0o700)


def test_s3_round_trip_through_moto_server(tmp_path, s3_endpoint):
    storage = Storage(
        data_dir=str(tmp_path), lake_url="s3://lake/prefix", s3_endpoint_url=s3_endpoint
    )
    relpath = storage.table_path("t", "07")
    assert storage.write_parquet(relpath, TABLE) == "s3://lake/prefix/t/shard=07/part.parquet"
    assert storage.read(relpath).equals(TABLE)
    assert storage.read(storage.table_path("t", "08")) is None
    assert storage.glob("t/shard=*/*.parquet") == ["t/shard=07/part.parquet"]
    import s3fs  # here, not at the top: the catalog test's writer processes import this module

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    assert fs.ls("lake/prefix/t/shard=07") == ["lake/prefix/t/shard=07/part.parquet"]
    assert not (tmp_path / "lake").exists()


def test_publish_on_s3_compares_before_writing(tmp_path, s3_endpoint):
    storage = Storage(
        data_dir=str(tmp_path), lake_url="s3://lake/prefix", s3_endpoint_url=s3_endpoint
    )
    assert storage.publish("t", shard_table([1, 2]), shard="00") is True
    assert storage.publish("t", shard_table([1, 2]), shard="00") is False
    assert storage.read(storage.table_path("t", "00")).equals(shard_table([1, 2]))


# -- compare-then-write ----------------------------------------------------------------------------


def test_publish_writes_only_what_changed(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    path = tmp_path / "lake" / storage.table_path("t", "00")
    assert storage.publish("t", shard_table([1, 2]), shard="00") is True
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # any rewrite now shows in mtime_ns
    before = path.stat()
    assert storage.publish("t", shard_table([1, 2]), shard="00") is False
    after = path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert storage.publish("t", shard_table([1, 2, 3]), shard="00") is True
    assert storage.read(storage.table_path("t", "00")).equals(shard_table([1, 2, 3]))
    assert not storage.catalog_path.exists()  # runs write the lake only


def test_write_if_changed_and_write_local_skip_equal_bytes(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    assert storage.write_if_changed("f.bin", OLD) is True
    assert storage.write_if_changed("f.bin", OLD) is False
    assert storage.write_if_changed("f.bin", NEW) is True
    assert storage.read_bytes("f.bin") == NEW
    local = storage.local("journal", "x.jsonl")
    assert storage.write_local(local, OLD) is True
    assert storage.write_local(local, OLD) is False
    assert local.read_bytes() == OLD


# -- atomicity: a failed or killed writer leaves the previous file whole ---------------------------


class FailsHalfway:
    """A file handle whose write puts half the bytes on disk, then fails like a full disk."""

    def __init__(self, fh):
        self._fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def write(self, data: bytes) -> int:
        self._fh.write(data[: len(data) // 2])
        self._fh.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str):
        return getattr(self._fh, name)


def fail_halfway(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open

    def faulty_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return FailsHalfway(fh) if "w" in mode else fh

    monkeypatch.setattr(mta_pipeline.atomic, "open", faulty_open, raising=False)


def fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def faulty_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(mta_pipeline.atomic.os, "fsync", faulty_fsync)


def writer(
    storage: Storage, target: str
) -> tuple[Path, type[Exception], Callable[[bytes], object]]:
    """The file a test writes, the error a failed write raises, and the write itself: a lake
    file through `write`, or a local working file through `write_local`."""
    if target == "lake":
        return Path(storage.lake_root) / "t/f.bin", LakeError, partial(storage.write, "t/f.bin")
    path = storage.local("journal", "f.bin")
    return path, OSError, partial(storage.write_local, path)


@pytest.mark.parametrize("fault", [fail_halfway, fail_fsync], ids=["write", "fsync"])
@pytest.mark.parametrize("target", ["lake", "local"])
def test_a_write_failing_midway_leaves_the_previous_file_whole(
    tmp_path, monkeypatch, fault, target
):
    path, error, write = writer(Storage(data_dir=str(tmp_path)), target)
    write(OLD)
    assert path.read_bytes() == OLD

    with monkeypatch.context() as patch:
        fault(patch)
        with pytest.raises(error):
            write(NEW)

    assert path.read_bytes() == OLD
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]
    write(NEW)
    assert path.read_bytes() == NEW


KILLED_BEFORE_RENAME = """
import os, signal, sys
from pathlib import Path
from mta_pipeline.resources.storage import Storage

os.replace = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
storage = Storage(data_dir=sys.argv[1])
new = bytes.fromhex(sys.argv[3])
if sys.argv[2] == "lake":
    storage.write("t/f.bin", new)
else:
    storage.write_local(storage.local("journal", "f.bin"), new)
"""


@pytest.mark.parametrize("target", ["lake", "local"])
def test_a_writer_killed_before_the_rename_leaves_the_previous_file_whole(tmp_path, target):
    path, _, write = writer(Storage(data_dir=str(tmp_path)), target)
    write(OLD)

    child = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_RENAME, str(tmp_path), target, NEW.hex()],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert path.read_bytes() == OLD
    assert child.returncode == -signal.SIGKILL, child.stderr


# -- the catalog -----------------------------------------------------------------------------------


# -- the catalog: an index over the lake -----------------------------------------------------------


def files_rows(vids: list[str], shard: str = "00") -> pa.Table:
    return schemas.to_table(config.T_MIDI_FILES, [{"vid": v, "shard": shard} for v in vids])


def vids_by_shard(storage: Storage) -> list[tuple[str, str]]:
    sql = f"SELECT shard, vid FROM {config.T_MIDI_FILES} ORDER BY shard, vid"
    return [tuple(r.values()) for r in storage.query(sql).to_pylist()]


def test_the_catalog_follows_the_lake_written_by_another_machine(tmp_path):
    """Two data dirs share one lake, as two pods do: each one's catalog answers with what the
    other wrote; rewritten files replace their rows, deleted files take theirs away."""
    lake = str(tmp_path / "lake")
    writer = Storage(data_dir=str(tmp_path / "a"), lake_url=lake)
    reader = Storage(data_dir=str(tmp_path / "b"), lake_url=lake)
    writer.publish(config.T_MIDI_FILES, files_rows(["a0", "a1"]), shard="00")
    writer.publish(config.T_MIDI_FILES, files_rows(["b0"], "01"), shard="01")
    assert vids_by_shard(reader) == [("00", "a0"), ("00", "a1"), ("01", "b0")]

    writer.publish(config.T_MIDI_FILES, files_rows(["a2"]), shard="00")
    (tmp_path / "lake" / Storage.table_path(config.T_MIDI_FILES, "01")).unlink()
    assert vids_by_shard(reader) == [("00", "a2")]
    assert not writer.catalog_path.exists()  # the writer never needed one


def test_a_sync_with_nothing_changed_loads_nothing(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    storage.publish(config.T_MIDI_FILES, files_rows(["a0"]), shard="00")
    storage.publish(config.T_MTA_REMOVALS, pa.table({"kind": ["vid"], "id": ["x" * 11]}))
    first = storage.sync_catalog()
    assert first.loaded == {} and first.tables == 2  # the first sync filled the new catalog
    storage.publish(config.T_MIDI_FILES, files_rows(["a0"]), shard="00")  # same rows: no write
    assert not storage.sync_catalog().changed
    storage.publish(config.T_MIDI_FILES, files_rows(["a9"]), shard="00")
    assert storage.sync_catalog().loaded == {config.T_MIDI_FILES: 1}


def test_a_catalog_edited_by_hand_is_not_what_a_sync_trusts_but_the_lake_stamps_are(tmp_path):
    """The catalog records each file's stamp; a file replaced with the same size and rows is a
    new stamp locally (a new modification time), so it is reloaded."""
    storage = Storage(data_dir=str(tmp_path))
    storage.publish(config.T_MIDI_FILES, files_rows(["a0"]), shard="00")
    storage.sync_catalog()
    path = tmp_path / "lake" / Storage.table_path(config.T_MIDI_FILES, "00")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert storage.sync_catalog().loaded == {config.T_MIDI_FILES: 1}


def sync_in_a_loop(data_dir: str, shard: str, rounds: int, start) -> None:
    storage = Storage(data_dir=data_dir)
    start.wait(timeout=120)
    for i in range(rounds):
        storage.publish(config.T_MIDI_FILES, files_rows([f"{shard}-{i}"], shard), shard=shard)
        storage.sync_catalog()


def test_parallel_processes_syncing_one_catalog_never_hit_duckdbs_lock(tmp_path):
    shards, rounds = ["00", "01", "02"], 6
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(len(shards))  # every process imported and ready: they start together
    procs = [
        ctx.Process(target=sync_in_a_loop, args=(str(tmp_path), s, rounds, start)) for s in shards
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * len(shards)
    got = vids_by_shard(Storage(data_dir=str(tmp_path)))
    assert got == [(s, f"{s}-{rounds - 1}") for s in shards]


def test_a_column_added_by_a_code_change_is_followed_and_other_shards_keep_theirs(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    storage.publish(config.T_MIDI_FILES, files_rows(["a0"]), shard="00")
    storage.publish(config.T_MIDI_FILES, files_rows(["b0"], "01"), shard="01")
    storage.sync_catalog()
    with duckdb.connect(str(storage.catalog_path)) as conn:  # the catalog of an older version
        conn.execute(f"ALTER TABLE {config.T_MIDI_FILES} DROP COLUMN title")
    storage.publish(config.T_MIDI_FILES, files_rows(["a1"]), shard="00")
    rows = storage.query(f"SELECT vid, title FROM {config.T_MIDI_FILES} ORDER BY vid")
    assert rows.to_pylist() == [{"vid": "a1", "title": None}, {"vid": "b0", "title": None}]


def test_a_view_over_a_table_not_reloaded_yet_never_blocks_other_tables(tmp_path):
    """After a code change adds a column the views read, the catalog's `mta_records` lacks it
    until its files are reloaded; syncing any other table meanwhile must still work."""
    storage = Storage(data_dir=str(tmp_path))
    storage.publish(config.T_MTA_RECORDS, schemas.MTA_RECORDS.empty_table(), shard="00")
    storage.sync_catalog()
    with duckdb.connect(str(storage.catalog_path)) as conn:  # the catalog of an older version
        conn.execute("DROP VIEW dataset")
        conn.execute("DROP VIEW dataset_full")
        conn.execute(f"ALTER TABLE {config.T_MTA_RECORDS} DROP COLUMN reply_5")
    removals = pa.table({"kind": ["vid"], "id": ["a" * 11]})
    assert storage.publish(config.T_MTA_REMOVALS, removals) is True
    assert storage.count(config.T_MTA_REMOVALS) == 1


def ledger_part(call_ids: list[str], units: int = 1) -> pa.Table:
    rows = [{"call_id": c, "units": units, "day_pt": None} for c in call_ids]
    return pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k in schemas.YOUTUBE_QUOTA.names} for r in rows],
        schema=schemas.YOUTUBE_QUOTA,
    )


def test_the_ledger_syncs_new_parts_by_call_id_and_reloads_a_part_rewritten(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    part = f"{config.T_YOUTUBE_QUOTA}/shard=00/day=2026-11-29"
    storage.write_parquet(f"{part}/a.parquet", ledger_part(["c1", "c2"]))
    assert storage.count(config.T_YOUTUBE_QUOTA) == 2
    storage.write_parquet(f"{part}/b.parquet", ledger_part(["c2", "c3"]))  # c2 replayed
    assert storage.sync_catalog().loaded == {config.T_YOUTUBE_QUOTA: 1}
    assert storage.count(config.T_YOUTUBE_QUOTA) == 3
    storage.write_parquet(f"{part}/a.parquet", ledger_part(["c1"]))  # rewritten by hand
    assert storage.count(config.T_YOUTUBE_QUOTA) == 3  # c1 (a), c2 and c3 (b)
    (tmp_path / "lake" / part / "b.parquet").unlink()
    assert storage.count(config.T_YOUTUBE_QUOTA) == 1
    assert (
        storage.count(config.T_YOUTUBE_QUOTA)
        == lake_index.unique_calls(
            [storage.read(p, schemas.YOUTUBE_QUOTA) for p in storage.ledger_parts()]
        ).num_rows
    )


def test_a_ledger_column_a_code_change_added_is_followed_on_append(tmp_path):
    storage = Storage(data_dir=str(tmp_path))
    part = f"{config.T_YOUTUBE_QUOTA}/shard=00/day=2026-11-29"
    storage.write_parquet(f"{part}/a.parquet", ledger_part(["c1"]))
    assert storage.count(config.T_YOUTUBE_QUOTA) == 1
    with duckdb.connect(str(storage.catalog_path)) as conn:  # the catalog of an older version
        conn.execute(f"ALTER TABLE {config.T_YOUTUBE_QUOTA} DROP COLUMN run_id")
    storage.write_parquet(f"{part}/b.parquet", ledger_part(["c2"]))
    assert storage.count(config.T_YOUTUBE_QUOTA) == 1 + 1
    assert "run_id" in storage.query(f"FROM {config.T_YOUTUBE_QUOTA}").column_names


def test_a_column_whose_type_changed_is_reloaded_from_every_file(tmp_path):
    """A code change turns a column's type: the catalog recreates it empty, so files that were
    not rewritten are reloaded too, not left with nulls until a rebuild."""

    def sized(vid: str, shard: str, size: int) -> pa.Table:
        rows = [{"vid": vid, "shard": shard, "size_bytes": size}]
        return schemas.to_table(config.T_MIDI_FILES, rows)

    storage = Storage(data_dir=str(tmp_path))
    storage.publish(config.T_MIDI_FILES, sized("a0", "00", 5), shard="00")
    storage.publish(config.T_MIDI_FILES, sized("b0", "01", 9), shard="01")
    storage.sync_catalog()
    with duckdb.connect(str(storage.catalog_path)) as conn:  # the catalog of an older version
        conn.execute(f"ALTER TABLE {config.T_MIDI_FILES} ALTER COLUMN size_bytes TYPE VARCHAR")
    storage.publish(config.T_MIDI_FILES, sized("a1", "00", 7), shard="00")  # only shard 00
    rows = storage.query(f"SELECT vid, size_bytes FROM {config.T_MIDI_FILES} ORDER BY vid")
    assert rows.to_pylist() == [{"vid": "a1", "size_bytes": 7}, {"vid": "b0", "size_bytes": 9}]


def fetch_archive(data_dir: str, lake: str, endpoint: str, start) -> None:
    import hashlib

    storage = Storage(data_dir=data_dir, lake_url=lake, s3_endpoint_url=endpoint)
    start.wait(timeout=120)
    path = storage.local_archive()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == storage.archive_state()["sha256"]


def test_runs_sharing_a_data_dir_fetch_the_archive_once_and_whole(tmp_path, s3_endpoint):
    """Several runs (one data dir, an S3 lake, an empty cache) ask for the archive at once: each
    gets a whole, verified copy; none sees another's half-written download."""
    import hashlib

    lake = "s3://lake/mta"
    storage = Storage(data_dir=str(tmp_path), lake_url=lake, s3_endpoint_url=s3_endpoint)
    body = os.urandom(8 << 20)
    local = tmp_path / "fetched.zip"
    local.write_bytes(body)
    state = {"fingerprint": {}, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    storage.put_archive(local, state)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(4)
    procs = [
        ctx.Process(target=fetch_archive, args=(str(tmp_path), lake, s3_endpoint, start))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * 4
    leftovers = [p.name for p in (tmp_path / config.ARCHIVE_DIR).iterdir()]
    assert sorted(leftovers) == sorted([f"{state['sha256']}.zip", f"{state['sha256']}.zip.lock"])
