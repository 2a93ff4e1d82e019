"""A no-change rerun of the whole graph against the full run, on the demo.

    .venv/bin/python -m bench.incremental [--count 200] [--repeat 3]

Runs the whole graph on a fresh data dir (corpus generated, emulator on loopback, persistent
SQLite instance as `mta` uses), then reruns it unchanged `--repeat` times. Prints the full run's
wall time, the median rerun, their ratio, and the quota units each spent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from mta_pipeline import config
from mta_pipeline.demo.corpus import generate_corpus
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    with tempfile.TemporaryDirectory() as tmp:
        corpus = generate_corpus(Path(tmp) / "corpus", count=args.count)
        home = Path(tmp) / "dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ.update(
            {
                config.MTA_DATA_DIR: str(Path(tmp) / "data"),
                config.GIANTMIDI_ARCHIVE_URL: str(corpus.archive_path),
                config.GIANTMIDI_METADATA_URL: str(corpus.metadata_path),
                config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
            }
        )
        emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,))
        os.environ[config.YOUTUBE_API_ENDPOINT] = emulator.start()
        quiet = lambda _: None  # noqa: E731
        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                started = time.perf_counter()
                assert materialize(defs, instance, "*", echo=quiet).ok
                full_s, full_units = time.perf_counter() - started, emulator.units_used
                reruns = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    assert materialize(defs, instance, "*", echo=quiet).ok
                    reruns.append(time.perf_counter() - started)
                rerun_units = emulator.units_used - full_units
        finally:
            emulator.stop()
    rerun_s = statistics.median(reruns)
    print(f"machine: {os.cpu_count()} CPUs; demo corpus of {args.count} files, 32 shards")
    print(f"  full run           {full_s:7.1f} s, {full_units} quota units")
    print(
        f"  no-change rerun    {rerun_s:7.1f} s (median of {args.repeat}), "
        f"{rerun_units} quota units in all reruns"
    )
    print(f"  ratio              {100 * rerun_s / full_s:.0f} % of the full run")


if __name__ == "__main__":
    main()
