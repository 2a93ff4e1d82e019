"""The `mta` command as a user runs it: separate processes, real files, no stack traces."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mta_pipeline import config
from mta_pipeline.partitions import SHARD_KEYS
from mta_pipeline_tests.catalog_db import catalog_db

MTA = str(Path(sys.executable).with_name("mta"))


def mta(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([MTA, *args], capture_output=True, text=True, timeout=timeout)


def test_missing_archive_setting_is_one_clear_line(data_env, monkeypatch):
    monkeypatch.delenv(config.GIANTMIDI_ARCHIVE_URL)
    monkeypatch.delenv(config.DAGSTER_HOME)  # mta's own instance, as a newcomer has
    got = mta("materialize", "--select", "giantmidi_archive")
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and "GIANTMIDI_ARCHIVE_URL is not set" in got.stderr
    assert "Traceback" not in got.stderr + got.stdout and "mta_pipeline." not in got.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["materialize", "--shard", "99"], "unknown shard(s) ['99']"),
        (["materialize", "--select", "no_such_asset"], "bad --select 'no_such_asset'"),
        (["query", "SELECT 1"], "holds no tables yet; run `mta demo` or `mta materialize` first"),
    ],
)
def test_user_mistakes_exit_2_without_a_stack_trace(data_env, args, message):
    got = mta(*args)
    assert got.returncode == 2, got.stderr
    assert message in got.stderr and "Traceback" not in got.stderr


def test_parallel_processes_on_different_shards_share_duckdb(data_env, corpus):
    assert mta("materialize", "--select", "giantmidi_archive").returncode == 0
    halves = [SHARD_KEYS[0::2], SHARD_KEYS[1::2]]

    def run(shards):
        args = ["materialize", "--select", "midi_files,midi_features"]
        for shard in shards:
            args += ["--shard", shard]
        return mta(*args, timeout=600)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, halves))
    for got in results:
        assert got.returncode == 0, got.stderr
        assert got.stdout.count(" ok in ") == len(SHARD_KEYS) // 2
        assert "lock" not in (got.stderr + got.stdout).lower()
    query = mta("query", "SELECT count(*) AS n, count(DISTINCT shard) AS shards FROM midi_features")
    assert query.returncode == 0
    with catalog_db() as conn:
        assert conn.execute("SELECT count(*) FROM midi_features").fetchone()[0] == len(corpus.good)
    bad = mta("query", "SELECT nonsense FROM midi_features")
    assert bad.returncode == 2 and "nonsense" in bad.stderr and "Traceback" not in bad.stderr
