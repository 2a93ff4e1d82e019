"""SIGKILL at several moments of a whole run (extraction, features, scraping, exports): every
file in the lake is always whole, and a rerun completes with complete tables."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from mta_pipeline import config
from mta_pipeline.core.tsv import read_tsv, tsv_problems
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import isolate_env

MTA = str(Path(sys.executable).with_name("mta"))


def assert_lake_whole(lake: Path) -> None:
    """Every file a reader would take is whole: Parquet parts open, the TSV is well formed."""
    for part in lake.rglob("*.parquet"):
        pq.read_metadata(part)
    tsv = lake / config.RELEASE_DIR / config.TSV_FILE
    if tsv.exists():
        assert tsv_problems(tsv.read_bytes()) == []


def test_kills_at_any_moment_leave_whole_files_and_a_rerun_completes(tmp_path, corpus, monkeypatch):
    data = isolate_env(monkeypatch, tmp_path, corpus)
    monkeypatch.delenv(config.DAGSTER_HOME)
    emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,), latency_s=0.05)
    monkeypatch.setenv(config.YOUTUBE_API_ENDPOINT, emulator.start())
    monkeypatch.setenv(config.YOUTUBE_API_KEY, config.DEMO_API_KEY)
    run = [MTA, "materialize", "--all"]
    try:
        for delay in (2.5, 5.0, 8.0, 11.0):
            proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            assert_lake_whole(data / config.LAKE_DIR)
        final = subprocess.run(run, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
    finally:
        emulator.stop()
    assert_lake_whole(data / config.LAKE_DIR)
    with catalog_db() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM midi_features), (SELECT count(*) FROM mta_records), "
            "(SELECT count(*) FROM dataset), "
            "(SELECT count(*) FROM youtube_videos WHERE status IN ('pending', 'failed')), "
            "(SELECT count(*) - count(DISTINCT call_id) FROM youtube_quota)"
        ).fetchone()
    assert counts == (len(corpus.good), len(corpus.good), len(corpus.good), 0, 0)
    frame = (data / config.LAKE_DIR / config.RELEASE_DIR / config.TSV_FILE).read_bytes()
    assert len(read_tsv(frame)) == len(corpus.good) + 1
