"""The DuckDB catalog is derived from the lake: lost, emptied, truncated or overwritten, it is
rebuilt by the next `mta materialize` (at its end, when it brings the catalog up to date), by any
read of it, or by `mta catalog rebuild`, with every table's rows; runs never read it, so a run
with nothing due calls the YouTube API zero times either way."""

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from mta_pipeline import config
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline.resources.storage import Storage
from mta_pipeline_tests.conftest import emulated_youtube, isolate_env

MTA = str(Path(sys.executable).with_name("mta"))
SHARDS: list[str] = []


def mta(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MTA, *args], capture_output=True, text=True, timeout=600)


def _delete(path: Path) -> None:
    path.unlink()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"<html>not a database</html>" * 500)


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus):
    """The whole graph for the four busiest shards (every run here names them), built once by
    `mta materialize`, YouTube through the emulator."""
    busiest = Counter(vid_to_shard(vid) for vid in corpus.good).most_common(4)
    SHARDS[:] = [arg for shard, _ in busiest for arg in ("--shard", shard)]
    with pytest.MonkeyPatch.context() as mp:
        data = isolate_env(mp, tmp_path_factory.mktemp("lost_catalog"), corpus)
        with emulated_youtube(mp) as emulator:
            got = mta("materialize", *SHARDS)
            assert got.returncode == 0, got.stderr[-3000:]
            storage = Storage(data_dir=str(data))
            yield storage, emulator, storage.row_counts()


@pytest.mark.parametrize("damage", [_delete, _truncate], ids=["deleted", "truncated"])
def test_mta_materialize_rebuilds_a_lost_or_truncated_catalog_and_fetches_nothing(
    built, damage: Callable[[Path], None]
):
    storage, emulator, before = built
    assert {config.T_YOUTUBE_QUOTA, config.T_YOUTUBE_COMMENTS, config.T_MIDI_FILES} <= set(before)
    calls = len(emulator.requests)
    damage(storage.catalog_path)
    got = mta("materialize", *SHARDS)
    assert got.returncode == 0, got.stderr[-3000:]
    assert "Traceback" not in got.stderr
    notices = [line for line in got.stderr.splitlines() if "rebuilt" in line]
    assert len(notices) == 1 and "from the lake" in notices[0], got.stderr
    assert storage.row_counts() == before
    assert len(emulator.requests) == calls  # the ledger and the states came back: nothing due
    views = storage.query("SELECT count(*) AS n FROM dataset").column("n")[0].as_py()
    assert views == before[config.T_MTA_RECORDS]
    assert bool(list(storage.root.glob(f"{config.DUCKDB_FILE}.damaged-*"))) == (damage is _truncate)


@pytest.mark.parametrize("damage", [_empty, _garbage], ids=["empty", "garbage"])
def test_any_step_that_opens_a_damaged_catalog_rebuilds_it(built, damage):
    """An asset run from the UI goes through the same storage layer as `mta materialize`."""
    storage, _, before = built
    damage(storage.catalog_path)
    assert storage.count(config.T_YOUTUBE_COMMENTS) == before[config.T_YOUTUBE_COMMENTS]
    assert storage.row_counts() == before


@pytest.mark.parametrize("damage", [_garbage, _truncate], ids=["garbage", "truncated"])
def test_mta_query_rebuilds_a_damaged_catalog_then_answers(built, damage):
    storage, _, before = built
    damage(storage.catalog_path)
    got = mta("query", f"SELECT count(*) AS n FROM {config.T_YOUTUBE_COMMENTS}")
    assert got.returncode == 0, got.stderr
    assert f"{before[config.T_YOUTUBE_COMMENTS]}" in got.stdout
    assert got.stderr.count("\n") == 1 and got.stderr.startswith("mta: the DuckDB catalog")
    assert "damaged" in got.stderr and f"rebuilt {len(before)} tables from the lake" in got.stderr


def test_catalog_rebuild_on_demand_lists_every_table(built):
    storage, _, before = built
    storage.catalog_path.unlink()
    got = mta("catalog", "rebuild")
    assert got.returncode == 0, got.stderr
    for table, rows in before.items():
        assert f"{table} " in got.stdout and f" {rows:,} rows" in got.stdout
    assert storage.row_counts() == before


def test_quota_left_today_comes_from_the_lake_ledger_not_the_catalog(built, monkeypatch):
    """With the catalog's ledger emptied (the file whole), a forced scrape may still spend only
    what the lake's ledger says is left today."""
    from datetime import UTC, datetime

    import duckdb

    from mta_pipeline.core.quota import pacific_day
    from mta_pipeline.resources.scrape_journal import ledger_today

    storage, emulator, _ = built
    storage.sync_catalog()
    spent = ledger_today(storage, pacific_day(datetime.now(UTC))).spent
    assert spent > 0
    with duckdb.connect(str(storage.catalog_path)) as conn:
        conn.execute(f"DELETE FROM {config.T_YOUTUBE_QUOTA}")
    monkeypatch.setenv(config.MTA_YOUTUBE_DAILY_QUOTA, str(spent + 3))
    calls = len(emulator.requests)
    got = mta("materialize", "--select", "youtube_videos", "--force", *SHARDS)
    assert 0 < len(emulator.requests) - calls <= 3, got.stderr[-2000:]


def test_a_catalog_another_process_rebuilt_is_not_rebuilt_again(tmp_path):
    """Two processes find the catalog damaged; the first rebuilds it; the second, taking the
    lock after, must keep that new catalog rather than move it aside as damaged."""
    import shutil

    import duckdb
    import pyarrow as pa

    storage = Storage(data_dir=str(tmp_path))
    storage.publish(config.T_MTA_REMOVALS, pa.table({"kind": ["vid"], "id": ["a" * 11]}))
    storage.sync_catalog()
    rebuilt = tmp_path / "rebuilt.duckdb"
    shutil.copy(storage.catalog_path, rebuilt)
    calls = []

    def work(conn):
        calls.append(1)
        if len(calls) == 1:  # meanwhile another process rebuilt the file
            shutil.copy(rebuilt, storage.catalog_path.with_name("incoming"))
            storage.catalog_path.with_name("incoming").replace(storage.catalog_path)
            raise duckdb.IOException('Could not read enough bytes from file "mta.duckdb"')
        return conn.execute(f"SELECT count(*) FROM {config.T_MTA_REMOVALS}").fetchone()[0]

    assert storage.on_catalog(work) == 1
    assert not list(tmp_path.glob("data/*.damaged-*")) and not list(tmp_path.glob("*.damaged-*"))
