"""All benchmarks at GiantMIDI's full size, side by side in one run, written to bench/BENCHMARKS.md.

    make bench          # = .venv/bin/python -m bench.run [--count 10855] [--repeat 3]

One generated corpus of `--count` files serves every figure: MIDI features (pipeline against a
naive single-process pretty_midi loop, and peak memory), YouTube scraping at 50 ms emulator
latency (units per video, videos per second against a sequential loop), a no-change rerun of the
whole graph against the full run, and the release build (first, unchanged and after one record
changed), with the split record shares at that size. Medians of `--repeat` runs where a
figure is cheap enough to repeat; each figure says how many runs it is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from bench.youtube import naive as naive_scrape
from mta_pipeline import config
from mta_pipeline.core.feature_batch import default_workers, extract_all
from mta_pipeline.core.splits import SPLITS
from mta_pipeline.demo.corpus import generate_corpus
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
from mta_pipeline.resources.scrape_journal import read_ledger
from mta_pipeline.resources.storage import Storage

ROOT = Path(__file__).resolve().parent.parent


def _naive_features(paths: list[str]) -> float:
    import pretty_midi

    from mta_pipeline.core.midi_features import features_from_midi

    started = time.perf_counter()
    for path in paths:
        with contextlib.suppress(Exception):
            features_from_midi(pretty_midi.PrettyMIDI(path))
    return time.perf_counter() - started


def _peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child (pool workers), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem = next(
        (
            int(line.split()[1]) // 1024 // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_855)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench" / "BENCHMARKS.md"))
    args = parser.parse_args()
    from mta_pipeline.definitions import defs
    from mta_pipeline.runner import materialize

    lines: list[str] = []
    quiet = lambda _: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        corpus = generate_corpus(tmp_path / "corpus", count=args.count)
        gen_s = time.perf_counter() - started
        print(f"corpus of {args.count} files generated in {gen_s:.0f} s", flush=True)
        home = tmp_path / "dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ.update(
            {
                config.MTA_DATA_DIR: str(tmp_path / "data"),
                config.GIANTMIDI_ARCHIVE_URL: str(corpus.archive_path),
                config.GIANTMIDI_METADATA_URL: str(corpus.metadata_path),
                config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
            }
        )

        # MIDI features: the pipeline's pool against a naive loop, on the same files.
        midi_dir = tmp_path / "plain"
        midi_dir.mkdir()
        with zipfile.ZipFile(corpus.archive_path) as zf:
            for vid, member in corpus.good.items():
                (midi_dir / f"{vid}.mid").write_bytes(zf.read(member))
        paths = sorted(str(p) for p in midi_dir.iterdir())
        naive_s = _naive_features(paths)
        print(f"naive features: {naive_s:.0f} s", flush=True)
        started = time.perf_counter()
        extract_all(paths)
        pool_s = time.perf_counter() - started
        own_mib, child_mib = _peak_rss_mib()
        print(f"pipeline features: {pool_s:.0f} s", flush=True)

        emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,), latency_s=0.05)
        os.environ[config.YOUTUBE_API_ENDPOINT] = emulator.start()
        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                timings: dict[str, float] = {}
                for name, selection in (
                    ("ingest", "group:giantmidi"),
                    ("scrape", "youtube_videos,youtube_comments"),
                    ("records", "comment_repetition,composer_splits,mta_removals,mta_records"),
                    ("release", "mta_tsv"),
                ):
                    started = time.perf_counter()
                    outcome = materialize(defs, instance, selection, echo=quiet)
                    timings[name] = time.perf_counter() - started
                    assert outcome.ok, outcome.failures
                    print(f"{name}: {timings[name]:.0f} s", flush=True)
                full_s = sum(timings.values())
                storage = Storage(data_dir=os.environ[config.MTA_DATA_DIR])
                videos = storage.read_all(config.T_YOUTUBE_VIDEOS).num_rows
                units = read_ledger(storage).num_rows
                units_before = emulator.units_used
                reruns = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    assert materialize(defs, instance, "*", echo=quiet).ok
                    reruns.append(time.perf_counter() - started)
                rerun_units = emulator.units_used - units_before
                release_root = tmp_path / "data" / "lake" / config.RELEASE_DIR
                unchanged, rebuilt = [], []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    assert materialize(defs, instance, "mta_tsv", echo=quiet, only_stale=False).ok
                    unchanged.append(time.perf_counter() - started)
                    (release_root / ".manifest.json").write_text("{}")  # every file changed
                    started = time.perf_counter()
                    assert materialize(defs, instance, "mta_tsv", echo=quiet, only_stale=False).ok
                    rebuilt.append(time.perf_counter() - started)
                release_mb = (
                    sum(p.stat().st_size for p in release_root.rglob("*") if p.is_file()) / 1e6
                )
                splits = storage.read_table(config.T_COMPOSER_SPLITS).to_pylist()
                per_split = {
                    s: sum(r["records"] for r in splits if r["split"] == s) for s in SPLITS
                }
                composers = {
                    s: sum(1 for r in splits if r["split"] == s and r["records"]) for s in SPLITS
                }
            sample = sorted(corpus.good)[: args.naive_sample]
            naive_scrape_s, naive_calls = naive_scrape(
                emulator.endpoint, sample, config.DEMO_API_KEY
            )
        finally:
            emulator.stop()
        tsv_bytes = (release_root / config.TSV_FILE).stat().st_size

    n = len(paths)
    pipe_rate = videos / timings["scrape"]
    naive_rate = len(sample) / naive_scrape_s
    rerun_s = statistics.median(reruns)
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `make bench` "
        f"(`.venv/bin/python -m bench.run --count {args.count} --repeat {args.repeat}`).",
        f"Machine: {machine()}.",
        f"Corpus: {args.count} generated MIDI files ({n} good), generated in {gen_s:.0f} s.",
        "",
        "## MIDI features (one run each, same files, same process)",
        "",
        "| | wall time | per file |",
        "|---|---:|---:|",
        f"| naive loop: pretty_midi + features, one process | {naive_s:.1f} s | "
        f"{1000 * naive_s / n:.2f} ms |",
        f"| pipeline: `extract_all`, {default_workers()} worker processes | {pool_s:.1f} s | "
        f"{1000 * pool_s / n:.2f} ms |",
        "",
        f"Speed-up **{naive_s / pool_s:.2f}x** (target ≥ 1.8x on 2 cores). Peak memory: "
        f"{own_mib:.0f} MiB for the main process, {child_mib:.0f} MiB for the largest worker "
        "(target < 1 GiB; files stream through workers one at a time, so it does not grow "
        "with the corpus).",
        "",
        "## YouTube scraping at 50 ms emulator latency",
        "",
        "| | videos | time | videos/s | quota units/video |",
        "|---|---:|---:|---:|---:|",
        f"| pipeline: `youtube_videos` + `youtube_comments`, 32 shard runs | {videos} | "
        f"{timings['scrape']:.1f} s | {pipe_rate:.1f} | {units / videos:.3f} |",
        f"| naive: one `videos.list` per video + comment call, one thread (sample) | "
        f"{len(sample)} | {naive_scrape_s:.1f} s | {naive_rate:.1f} | "
        f"{naive_calls / len(sample):.3f} |",
        "",
        f"Throughput **{pipe_rate / naive_rate:.1f}x** the sequential loop (target ≥ 8x); "
        f"**{units / videos:.3f}** units per video (target ≤ 1.03; naive: 2 at most).",
        "",
        "## Incremental",
        "",
        "| | time | quota units |",
        "|---|---:|---:|",
        f"| full run of the graph (ingest {timings['ingest']:.0f} s, scrape "
        f"{timings['scrape']:.0f} s, records {timings['records']:.0f} s, release "
        f"{timings['release']:.0f} s) | {full_s:.1f} s | {units} |",
        f"| no-change rerun of the whole graph (median of {args.repeat}) | {rerun_s:.1f} s | "
        f"{rerun_units} |",
        "",
        f"The rerun takes **{100 * rerun_s / full_s:.1f} %** of the full run (target < 5 %).",
        "",
        "## Release",
        "",
        f"The release folder from all {n} records (TSV, three configs × three splits of "
        f"Parquet, {n} MIDI files, the card; {release_mb:.0f} MB, the TSV {tsv_bytes / 1e6:.1f} "
        "MB):",
        "",
        "| | time |",
        "|---|---:|",
        f"| first build (part of the full run above) | {timings['release']:.1f} s |",
        f"| every file rewritten (manifest cleared; median of {args.repeat}) | "
        f"{statistics.median(rebuilt):.1f} s |",
        f"| nothing changed (median of {args.repeat}) | {statistics.median(unchanged):.1f} s |",
        "",
        "Record shares of the composer splits at this size (target 80/10/10):",
        "",
        "| split | records | share | composers |",
        "|---|---:|---:|---:|",
        *(
            f"| {s} | {per_split[s]} | {per_split[s] / max(1, sum(per_split.values())):.1%} | "
            f"{composers[s]} |"
            for s in SPLITS
        ),
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
