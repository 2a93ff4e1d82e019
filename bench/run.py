"""All benchmarks on a realistic GiantMIDI-sized corpus, side by side in one run, to BENCHMARKS.md.

    make bench          # = .venv/bin/python -m bench.run [--count 10855] [--repeat 3]
    MTA_REAL_MIDI_DIR=/path/to/giantmidi/midis make bench   # also real files, read in place

One generated corpus of `--count` realistic files (`generate_corpus(..., realistic=True)`: real
GiantMIDI size, median 2,800 notes, a tail past 40,000) serves every figure:

- MIDI parsing, ratios first: the naive single-process pretty_midi loop against the pipeline's
  parser (one process, then its default pool) on the same `--naive-sample` files, spread evenly
  over the size distribution; the whole `midi_features` stage (`mta materialize --select
  midi_features`, 32 shard runs) in a fresh process, timed, with the peak memory of its process
  tree (bench.stage); with MTA_REAL_MIDI_DIR, the same comparison and the parsers' parity on
  real files; the `midi_tokens` stage and its lake table, when the graph has them.
- YouTube scraping at 50 ms emulator latency (units per video, videos per second against a
  sequential loop), a no-change rerun of the whole graph against the full run, and the release
  build (first, unchanged and after every file changed), with the split record shares.

Medians of `--repeat` runs where a figure is cheap enough to repeat; each figure says how many
runs it is. MTA_MIDI_BACKEND (symusic, the default, or pretty_midi) chooses the pipeline's parser
for every figure, as it does for `mta`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench import features as fb
from bench.stage import StageRun, run_stage
from mta_pipeline import config

if TYPE_CHECKING:
    import dagster as dg

# Dagster and the pipeline's modules are imported in `main`, not here: the MIDI pools' workers
# (forkserver) import the main module again, and should start as light as `mta`'s.
ROOT = Path(__file__).resolve().parent.parent
TOKENS = "midi_tokens"  # the token table's asset and lake folder, when the graph has it
SHARDS_READ = 1000  # materialization records read per asset: 32 shards, many runs


@dataclass(frozen=True)
class ShardFigures:
    """Sums over the newest materialization of each shard of a sharded asset."""

    shards: int
    seconds: float  # the step's own `seconds` metadata: parsing time, pool start-up included
    parsed: int
    notes: int
    largest_shard: int  # files
    backends: tuple[str, ...]  # the runs' `midi_backend` metadata


def shard_figures(instance: dg.DagsterInstance, asset: str) -> ShardFigures:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=SHARDS_READ
    ).records
    newest: dict[str | None, dict] = {}
    for record in records:  # newest first
        meta = record.asset_materialization.metadata
        newest.setdefault(record.partition_key, {k: v.value for k, v in meta.items()})

    def total(key: str) -> float:
        return sum(float(m.get(key) or 0) for m in newest.values())

    notes = total("notes") or sum(
        float(m.get("parsed_notes_per_s") or 0) * float(m.get("seconds") or 0)
        for m in newest.values()
    )
    return ShardFigures(
        shards=len(newest),
        seconds=total("seconds"),
        parsed=int(total("parsed")),
        notes=int(notes),
        largest_shard=max((int(m.get("files") or 0) for m in newest.values()), default=0),
        backends=tuple(sorted({str(m.get("midi_backend")) for m in newest.values()})),
    )


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def checked(stage: StageRun, what: str) -> StageRun:
    if stage.returncode != 0:
        tail = stage.log.read_text(errors="replace").splitlines()[-20:]
        sys.exit(
            f"bench: {what} failed (exit {stage.returncode}); end of {stage.log}:\n"
            + "\n".join(tail)
        )
    return stage


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
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=300,
        help="files (spread over the sizes) for the naive loops: MIDI parsing and scraping",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "BENCHMARKS.md"))
    args = parser.parse_args()
    import dagster as dg

    from bench.youtube import naive as naive_scrape
    from mta_pipeline.core.splits import SPLITS
    from mta_pipeline.definitions import defs
    from mta_pipeline.demo.corpus import generate_corpus
    from mta_pipeline.demo.youtube_emulator import YouTubeEmulator
    from mta_pipeline.resources.scrape_journal import read_ledger
    from mta_pipeline.resources.storage import Storage
    from mta_pipeline.runner import materialize

    has_tokens = TOKENS in {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}
    real_dir = os.environ.get(fb.REAL_MIDI_DIR, "").strip()
    quiet = lambda _: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        corpus = generate_corpus(tmp_path / "corpus", count=args.count, realistic=True)
        gen_s = time.perf_counter() - started
        print(f"realistic corpus of {args.count} files generated in {gen_s:.0f} s", flush=True)
        home = tmp_path / "dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())  # as `mta`
        data_dir = tmp_path / "data"
        os.environ.update(
            {
                config.MTA_DATA_DIR: str(data_dir),
                config.GIANTMIDI_ARCHIVE_URL: str(corpus.archive_path),
                config.GIANTMIDI_METADATA_URL: str(corpus.metadata_path),
                config.YOUTUBE_API_KEY: config.DEMO_API_KEY,
            }
        )

        # MIDI parsing: naive loop against the pipeline's parser, on the same sample files.
        sample, n = fb.extract_sample(corpus, tmp_path / "sample", args.naive_sample)
        midi = fb.compare(sample, args.repeat)
        print(
            f"MIDI sample of {midi.files}: naive {midi.ms(midi.naive_s):.1f} ms/file, pipeline "
            f"{midi.ms(midi.single_s):.2f} ms/file in one process",
            flush=True,
        )
        real = None
        if real_dir:
            real = fb.compare(fb.real_midi_paths(real_dir), args.repeat)
            print(f"real MIDI files: {real.files} compared", flush=True)

        emulator = YouTubeEmulator(api_keys=(config.DEMO_API_KEY,), latency_s=0.05)
        os.environ[config.YOUTUBE_API_ENDPOINT] = emulator.start()
        child_env = {**os.environ, config.DAGSTER_HOME: str(home)}
        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                timings: dict[str, float] = {}

                def timed(name: str, selection: str) -> None:
                    started = time.perf_counter()
                    outcome = materialize(defs, instance, selection, echo=quiet)
                    timings[name] = time.perf_counter() - started
                    assert outcome.ok, outcome.failures
                    print(f"{name}: {timings[name]:.0f} s", flush=True)

                def stage(name: str, asset: str) -> StageRun:
                    run = checked(
                        run_stage(
                            ["materialize", "--select", asset],
                            child_env,
                            cwd=tmp_path,
                            log=tmp_path / f"{asset}.log",
                        ),
                        f"mta materialize --select {asset}",
                    )
                    timings[name] = run.command_s
                    print(
                        f"{name}: {run.wall_s:.0f} s, peak {run.tree_peak_mib:.0f} MiB", flush=True
                    )
                    return run

                timed("ingest", "giantmidi_archive,giantmidi_metadata,midi_files")
                features = stage("features", "midi_features")
                step = shard_figures(instance, "midi_features")
                tokens = stage("tokens", TOKENS) if has_tokens else None
                tokens_dir = data_dir / config.LAKE_DIR / TOKENS
                tokens_bytes = folder_bytes(tokens_dir) if tokens_dir.is_dir() else None
                timed("scrape", "youtube_videos,youtube_comments")
                timed("records", "comment_repetition,composer_splits,mta_removals,mta_records")
                timed("release", "mta_tsv")
                full_s = sum(timings.values())
                storage = Storage(data_dir=os.environ[config.MTA_DATA_DIR])
                notes = sorted(
                    storage.read_all(config.T_MIDI_FEATURES).column("n_notes").to_pylist()
                )
                videos = storage.read_all(config.T_YOUTUBE_VIDEOS).num_rows
                units = read_ledger(storage).num_rows
                units_before = emulator.units_used
                reruns, rerun_runs = [], []
                for _ in range(args.repeat):
                    said: list[str] = []
                    started = time.perf_counter()
                    outcome = materialize(defs, instance, "*", echo=said.append)
                    reruns.append(time.perf_counter() - started)
                    assert outcome.ok, outcome.failures
                    rerun_runs.append(outcome.runs)
                    for line in said:  # what a no-change rerun still runs, for the console
                        if "skipped" not in line and not line.startswith("    "):
                            print(f"  rerun: {line}", flush=True)
                rerun_units = emulator.units_used - units_before
                release_root = data_dir / config.LAKE_DIR / config.RELEASE_DIR
                unchanged, rebuilt = [], []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    assert materialize(defs, instance, "mta_tsv", echo=quiet, only_stale=False).ok
                    unchanged.append(time.perf_counter() - started)
                    (release_root / ".manifest.json").write_text("{}")  # every file changed
                    started = time.perf_counter()
                    assert materialize(defs, instance, "mta_tsv", echo=quiet, only_stale=False).ok
                    rebuilt.append(time.perf_counter() - started)
                release_mb = folder_bytes(release_root) / 1e6
                splits = storage.read_table(config.T_COMPOSER_SPLITS).to_pylist()
                per_split = {
                    s: sum(r["records"] for r in splits if r["split"] == s) for s in SPLITS
                }
                composers = {
                    s: sum(1 for r in splits if r["split"] == s and r["records"]) for s in SPLITS
                }
            scrape_sample = sorted(corpus.good)[: args.naive_sample]
            naive_scrape_s, naive_calls = naive_scrape(
                emulator.endpoint, scrape_sample, config.DEMO_API_KEY
            )
        finally:
            emulator.stop()
        tsv_bytes = (release_root / config.TSV_FILE).stat().st_size

    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `make bench` "
        f"(`.venv/bin/python -m bench.run --count {args.count} --repeat {args.repeat} "
        f"--naive-sample {args.naive_sample}`).",
        f"Machine: {machine()}.",
        f"Corpus: {args.count} generated *realistic* MIDI files ({n} good; "
        "`generate_corpus(..., realistic=True)`, GiantMIDI-Piano size: "
        f"{_notes_summary(notes)}), generated in {gen_s:.0f} s.",
        "",
        *_midi_section(midi, real, features, step, n),
        *_tokens_section(has_tokens, tokens, tokens_bytes, n),
        *_rest_sections(
            args=args,
            n=n,
            timings=timings,
            full_s=full_s,
            videos=videos,
            units=units,
            scrape_sample=len(scrape_sample),
            naive_scrape_s=naive_scrape_s,
            naive_calls=naive_calls,
            reruns=reruns,
            rerun_units=rerun_units,
            rerun_runs=max(rerun_runs),
            release_mb=release_mb,
            tsv_bytes=tsv_bytes,
            rebuilt=rebuilt,
            unchanged=unchanged,
            per_split=per_split,
            composers=composers,
        ),
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"written to {args.out}", file=sys.stderr)


def _notes_summary(notes: list[int]) -> str:
    if not notes:
        return "no notes"
    return (
        f"{sum(notes) / len(notes):,.0f} notes per file on average, median "
        f"{notes[len(notes) // 2]:,}, largest {notes[-1]:,}, {sum(notes):,} in all"
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _midi_section(
    midi: fb.Comparison,
    real: fb.Comparison | None,
    features: StageRun,
    step: ShardFigures,
    n: int,
) -> list[str]:
    step_ms = 1000 * step.seconds / max(1, step.parsed)
    step_rate = step.notes / step.seconds if step.seconds > 0 else 0.0
    naive_ms = midi.ms(midi.naive_s)
    naive_rate = midi.notes_per_s(midi.naive_s)
    stage_rate = n / features.wall_s if features.wall_s > 0 else 0.0
    lines = [
        "## MIDI parsing and features",
        "",
        f"- **{_ratio(naive_ms, step_ms):.0f}x** faster per file: the `midi_features` step "
        f"({step_ms:.2f} ms a file: its parse time over all {step.shards} shards, "
        f"{step.seconds:.1f} s for {step.parsed} files) against the naive single-process "
        f"pretty_midi loop ({naive_ms:.1f} ms a file on the {midi.files}-file sample); "
        f"{_ratio(step_rate, naive_rate):.0f}x in notes per second "
        f"({step_rate:,.0f} against {naive_rate:,.0f}). Goal ≥ 30x (aim 100x).",
        f"- **{_ratio(midi.naive_s, midi.single_s):.0f}x** parser against parser on the same "
        f"{midi.files} files, one process each ({midi.ms(midi.single_s):.2f} ms against "
        f"{naive_ms:.1f} ms a file); **{_ratio(midi.naive_s, midi.pool_s):.0f}x** with the "
        f"pipeline's default pool of {midi.workers} processes.",
        f"- **{features.wall_s:.1f} s** for the whole features stage on {n} files: "
        f"`mta materialize --select midi_features` ({step.shards} shard runs) as a new process, "
        f"Python start-up included ({features.command_s:.1f} s inside the command; "
        f"{stage_rate:.0f} files/s). Goal < 60 s for 10,855 files on 2 cores.",
        f"- **{features.tree_peak_mib:.0f} MiB** peak memory of that stage, all its processes "
        f"together (main {features.main_peak_mib:.0f} MiB, largest pool process "
        f"{features.largest_worker_mib:.0f} MiB). Goal < 1 GiB "
        f"whatever the corpus size; the largest shard held {step.largest_shard} files.",
        "",
        f"The sample: {midi.files} of the {n} files, the middle file of each of {midi.files} "
        "equal slices of the files sorted by size (so it follows the size distribution, tail "
        f"included; {midi.notes / max(1, midi.files):,.0f} notes a file on average). Naive "
        "loop: `pretty_midi.PrettyMIDI(path)` then the pipeline's features "
        "(`features_from_midi`) on each file in turn. Pipeline parser: "
        f"`extract_all(paths, workers, backend={midi.backend!r})`, the function `midi_features` "
        "calls, reading each file's bytes; the pool's time includes starting its workers, as "
        "each shard's run does (the forkserver, started once a process, is started before). "
        "Wall times of the three, interleaved, median of "
        f"{midi.repeat}:",
        "",
        *fb.table(midi, "generated sample"),
        "",
        fb.parity(midi),
        "",
        f"The features stage in a new process, one run ({features.workers} multiprocessing "
        f"processes below it over the run, and {features.others} of Dagster's log capture):",
        "",
        "| `midi_features`, all shards | |",
        "|---|---:|",
        f"| wall time of `mta materialize --select midi_features`, new process | "
        f"{features.wall_s:.1f} s |",
        f"| inside the command (definitions loaded, {step.shards} Dagster runs) | "
        f"{features.command_s:.1f} s |",
        f"| parsing: the step's `seconds` metadata summed over the shards | {step.seconds:.1f} s "
        f"({step_ms:.2f} ms a file, {step_rate:,.0f} notes/s) |",
        f"| parser: the runs' `midi_backend` metadata | {', '.join(step.backends)} |",
        f"| peak RSS of the main process (getrusage) | {features.main_peak_mib:.0f} MiB |",
        f"| peak RSS of the largest pool process: worker, forkserver (/proc VmHWM) | "
        f"{features.largest_worker_mib:.0f} MiB |",
        f"| peak RSS of the largest other process: Dagster's `tail -F`, `watch_orphans.py` | "
        f"{features.largest_other_mib:.0f} MiB |",
        f"| peak RSS of all its processes at once (/proc every 0.1 s; shared pages counted in "
        f"each process) | {features.tree_peak_mib:.0f} MiB |",
        "",
    ]
    if real is None:
        lines += [
            f"Real GiantMIDI files: not measured (set `{fb.REAL_MIDI_DIR}` to a folder of them).",
            "",
        ]
    elif not real.files:
        lines += [f"Real GiantMIDI files: none found in `{fb.REAL_MIDI_DIR}`.", ""]
    else:
        lines += [
            f"### Real GiantMIDI-Piano files ({real.files}, read in place from "
            f"`{fb.REAL_MIDI_DIR}`)",
            "",
            f"**{_ratio(real.naive_s, real.single_s):.0f}x** faster per file, one process each "
            f"({real.ms(real.single_s):.2f} ms against {real.ms(real.naive_s):.1f} ms); "
            f"**{real.same_notes}/{real.both_parsed}** files with identical `n_notes`, largest "
            f"`duration_s` difference {real.max_duration_diff:.6f} s.",
            "",
            *fb.table(real, "real files"),
            "",
            fb.parity(real),
            "",
        ]
    return lines


def _tokens_section(
    has_tokens: bool, tokens: StageRun | None, tokens_bytes: int | None, n: int
) -> list[str]:
    lines = ["## MIDI tokens", ""]
    if not has_tokens:
        return [*lines, f"Not built: the graph has no `{TOKENS}` asset.", ""]
    assert tokens is not None
    size = (
        f"**{tokens_bytes / 1e6:.1f} MB** on disk (`lake/{TOKENS}/`, "
        f"{tokens_bytes / max(1, n) / 1e3:.1f} kB a file)"
        if tokens_bytes is not None
        else f"not built (`lake/{TOKENS}/` missing after the stage)"
    )
    return [
        *lines,
        f"The `{TOKENS}` table of {n} files: {size}; the stage (`mta materialize --select "
        f"{TOKENS}`, new process, one run) took **{tokens.wall_s:.1f} s** "
        f"({tokens.command_s:.1f} s inside the command), peak memory {tokens.tree_peak_mib:.0f} "
        "MiB all processes together.",
        "",
    ]


def _rest_sections(
    *,
    args: argparse.Namespace,
    n: int,
    timings: dict[str, float],
    full_s: float,
    videos: int,
    units: int,
    scrape_sample: int,
    naive_scrape_s: float,
    naive_calls: int,
    reruns: list[float],
    rerun_units: int,
    rerun_runs: int,
    release_mb: float,
    tsv_bytes: int,
    rebuilt: list[float],
    unchanged: list[float],
    per_split: dict[str, int],
    composers: dict[str, int],
) -> list[str]:
    pipe_rate = videos / timings["scrape"]
    naive_rate = scrape_sample / naive_scrape_s
    rerun_s = statistics.median(reruns)
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    return [
        "## YouTube scraping at 50 ms emulator latency",
        "",
        "| | videos | time | videos/s | quota units/video |",
        "|---|---:|---:|---:|---:|",
        f"| pipeline: `youtube_videos` + `youtube_comments`, 32 shard runs | {videos} | "
        f"{timings['scrape']:.1f} s | {pipe_rate:.1f} | {units / videos:.3f} |",
        f"| naive: one `videos.list` per video + comment call, one thread (sample) | "
        f"{scrape_sample} | {naive_scrape_s:.1f} s | {naive_rate:.1f} | "
        f"{naive_calls / scrape_sample:.3f} |",
        "",
        f"Throughput **{pipe_rate / naive_rate:.1f}x** the sequential loop (target ≥ 8x); "
        f"**{units / videos:.3f}** units per video (target ≤ 1.03; naive: 2 at most).",
        "",
        "## Incremental",
        "",
        "| | time | quota units |",
        "|---|---:|---:|",
        f"| full run of the graph on the realistic corpus ({parts}) | {full_s:.1f} s | {units} |",
        f"| no-change rerun of the whole graph (median of {args.repeat}; at most {rerun_runs} "
        f"Dagster runs started) | {rerun_s:.1f} s | {rerun_units} |",
        "",
        "The stages run in this process, except `features` (and `tokens`), which run as `mta "
        "materialize` in a new process: the full run counts their time inside the command, "
        "without Python's start-up.",
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
            for s in per_split
        ),
        "",
    ]


if __name__ == "__main__":
    main()
