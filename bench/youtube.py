"""YouTube scraping: the pipeline's assets against a naive sequential loop, emulator latency 50 ms.

    .venv/bin/python -m bench.youtube [--count 2000] [--latency-ms 50] [--naive-sample 150]

Generates a corpus of `--count` videos, materializes `midi_files` for every shard (not timed),
then times `youtube_videos` + `youtube_comments` over all shards through the real runner and
client against the emulator. The naive loop (one videos.list call per video, then one comment
call per video that has comments, one thread, same client) runs on a sample: its rate is
constant, so its videos/s is measured without waiting half an hour.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dagster as dg

from mta_pipeline import config
from mta_pipeline.demo.corpus import generate_corpus
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline.resources.scrape_journal import read_ledger
from mta_pipeline.resources.storage import Storage
from mta_pipeline.resources.youtube import Budget, YouTubeResource

KEY = "bench-key"


def naive(endpoint: str, vids: list[str], key: str = KEY) -> tuple[float, int]:
    """Seconds and calls for the sequential one-call-per-video loop."""
    client = YouTubeResource(api_key=key, api_endpoint=endpoint).client(
        Budget(units=10**9), lambda call: None
    )
    calls = 0
    started = time.perf_counter()
    for vid in vids:
        response = client.videos([vid])
        calls += 1
        items = response.get("items", []) if isinstance(response, dict) else []
        if items and items[0].get("statistics", {}).get("commentCount", "0") != "0":
            client.comment_threads(vid)
            calls += 1
    return time.perf_counter() - started, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--naive-sample", type=int, default=150)
    args = parser.parse_args()
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    with tempfile.TemporaryDirectory() as tmp:
        corpus = generate_corpus(Path(tmp) / "corpus", count=args.count)
        os.environ.update(
            {
                config.MTA_DATA_DIR: str(Path(tmp) / "data"),
                config.GIANTMIDI_ARCHIVE_URL: str(corpus.archive_path),
                config.YOUTUBE_API_KEY: KEY,
            }
        )
        emulator = YouTubeEmulator(api_keys=(KEY,), latency_s=args.latency_ms / 1000)
        os.environ[config.YOUTUBE_API_ENDPOINT] = emulator.start()
        try:
            with dg.DagsterInstance.ephemeral() as instance:
                quiet = lambda _: None  # noqa: E731
                assert materialize(defs, instance, "*midi_files", echo=quiet).ok
                started = time.perf_counter()
                outcome = materialize(defs, instance, "youtube_videos,youtube_comments", echo=quiet)
                pipeline_s = time.perf_counter() - started
            assert outcome.ok, outcome.failures
            storage = Storage(data_dir=os.environ[config.MTA_DATA_DIR])
            videos = storage.read_all(config.T_YOUTUBE_VIDEOS).num_rows
            units = read_ledger(storage).num_rows
            sample = sorted(corpus.good)[: args.naive_sample]
            naive_s, naive_calls = naive(emulator.endpoint, sample)
        finally:
            emulator.stop()
    pipe_rate, naive_rate = videos / pipeline_s, len(sample) / naive_s
    print(f"machine: {os.cpu_count()} CPUs; emulator latency {args.latency_ms:.0f} ms per request")
    print(
        f"  pipeline  {videos:6d} videos in {pipeline_s:7.1f} s = {pipe_rate:7.1f} videos/s, "
        f"{units / videos:.3f} units/video (32 shard runs, Dagster overhead included)"
    )
    print(
        f"  naive     {len(sample):6d} videos in {naive_s:7.1f} s = {naive_rate:7.1f} videos/s, "
        f"{naive_calls / len(sample):.3f} units/video (one thread, one call per video)"
    )
    print(
        f"  throughput ratio {pipe_rate / naive_rate:.1f}x; "
        f"quota ratio {(naive_calls / len(sample)) / (units / videos):.2f}x fewer units"
    )


if __name__ == "__main__":
    main()
