"""SIGKILL in the middle of a YouTube scrape: the rerun completes and pays no answer twice."""

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mta_pipeline import config
from mta_pipeline.demo.corpus import generate_corpus
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline.partitions import vid_to_shard
from mta_pipeline_tests.catalog_db import catalog_db
from mta_pipeline_tests.conftest import isolate_env

MTA = str(Path(sys.executable).with_name("mta"))


def test_killed_scrape_resumes_without_paying_twice(tmp_path, monkeypatch):
    corpus = generate_corpus(tmp_path / "corpus", count=200, seed=11)
    isolate_env(monkeypatch, tmp_path, corpus)
    monkeypatch.delenv(config.DAGSTER_HOME)  # `mta` makes its own under MTA_DATA_DIR
    shard, _ = Counter(vid_to_shard(v) for v in corpus.good).most_common(1)[0]
    vids = sorted(v for v in corpus.good if vid_to_shard(v) == shard)
    emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,), latency_s=0.25)
    monkeypatch.setenv(config.YOUTUBE_API_ENDPOINT, emulator.start())
    monkeypatch.setenv(config.YOUTUBE_API_KEY, config.DEMO_API_KEY)
    monkeypatch.setenv(config.MTA_YOUTUBE_CONCURRENCY, "1")
    try:
        ingest = subprocess.run(
            [MTA, "materialize", "--select", "*midi_files", "--shard", shard, "--all"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ingest.returncode == 0, ingest.stderr
        with_comments = [
            v
            for v in vids
            if (emulator.video_resource(v) or {}).get("statistics", {}).get("commentCount", "0")
            != "0"
        ]
        expected = math.ceil(len(vids) / 50) + len(with_comments)
        assert len(with_comments) >= 4

        scrape = [
            MTA,
            "materialize",
            "--select",
            "youtube_videos,youtube_comments,youtube_quota",
            "--shard",
            shard,
            "--all",
        ]
        proc = subprocess.Popen(scrape, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(emulator.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # mid-shard: between checkpoints
        proc.wait(timeout=30)
        killed_after = len(emulator.requests)
        assert 4 <= killed_after < expected

        rerun = subprocess.run(scrape, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        # Every answered call is replayed from the journal; only a call in flight at the kill
        # (sent, charged, never answered) may be made again.
        assert expected <= emulator.units_used <= expected + 1
        with catalog_db() as conn:
            units, distinct = conn.execute(
                "SELECT sum(units), count(DISTINCT call_id) FROM youtube_quota"
            ).fetchone()
            statuses = dict(
                conn.execute(
                    "SELECT status, count(*) FROM youtube_comment_status GROUP BY 1"
                ).fetchall()
            )
            comments = conn.execute("SELECT count(DISTINCT vid) FROM youtube_comments").fetchone()
        assert units == distinct  # no call counted twice in the ledger
        assert emulator.units_used - 1 <= units <= emulator.units_used
        assert "pending" not in statuses and "failed" not in statuses
        assert comments == (len(with_comments),)
    finally:
        emulator.stop()
