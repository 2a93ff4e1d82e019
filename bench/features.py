"""MIDI parsing: the pipeline's parser against a naive single-process pretty_midi loop.

    .venv/bin/python -m bench.features [--count 2000] [--naive-sample 300] [--repeat 3]
    MTA_REAL_MIDI_DIR=/path/to/giantmidi .venv/bin/python -m bench.features

Generates a realistic corpus of `--count` files (GiantMIDI-sized, `demo.realistic`), takes
`--naive-sample` of them spread evenly over the size distribution (every k-th file by size),
and times on exactly those files, in the same run: a plain loop calling pretty_midi + the
features on each file (one process), the pipeline's `extract_all` in one process, and
`extract_all` with its default pool. When MTA_REAL_MIDI_DIR names a folder of real .mid files,
the same comparison runs on them. Parity: files whose n_notes agree between the two parsers,
and the largest difference of duration_s. MTA_MIDI_BACKEND chooses the pipeline's parser
(symusic, the default, or pretty_midi), as it does for the pipeline.

`bench.run` uses these functions for the MIDI section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mta_pipeline import config
from mta_pipeline.core.feature_batch import default_workers, extract_all

if TYPE_CHECKING:
    from mta_pipeline.demo.corpus import DemoCorpus

REAL_MIDI_DIR = "MTA_REAL_MIDI_DIR"  # a folder of real GiantMIDI .mid files, read in place
MIDI_SUFFIXES = (".mid", ".midi")
MISMATCHES_SHOWN = 5
POOL_MIN_FILES = 8  # extract_all parses fewer files in the calling process


def pipeline_backend() -> str:
    """The parser the pipeline uses here (MTA_MIDI_BACKEND, default symusic)."""
    return os.environ.get(config.MTA_MIDI_BACKEND, "").strip() or config.DEFAULT_MIDI_BACKEND


def naive(paths: list[str]) -> tuple[float, list[dict | None]]:
    """Seconds of the naive loop (pretty_midi parse + the same features, one process), and its
    features per file (None where pretty_midi fails)."""
    import pretty_midi

    from mta_pipeline.core.midi_features import features_from_midi

    out: list[dict | None] = []
    started = time.perf_counter()
    for path in paths:
        try:
            out.append(features_from_midi(pretty_midi.PrettyMIDI(path)))
        except Exception:
            out.append(None)
    return time.perf_counter() - started, out


def pipeline(
    paths: list[str], workers: int | None, backend: str | None = None
) -> tuple[float, list]:
    """Seconds of `extract_all` (the code `midi_features` runs) and its FeatureResults."""
    started = time.perf_counter()
    results = extract_all(paths, workers, backend=backend or pipeline_backend())
    return time.perf_counter() - started, results


def spread_sample(sizes: dict[str, int], k: int) -> list[str]:
    """`k` names spread evenly over the size distribution: the middle file of each of `k` equal
    slices of the names sorted by (size, name). Deterministic; all names when k >= len."""
    ordered = sorted(sizes, key=lambda name: (sizes[name], name))
    n = len(ordered)
    if k >= n:
        return ordered
    return [ordered[(2 * i + 1) * n // (2 * k)] for i in range(k)]


def extract_sample(corpus: DemoCorpus, out_dir: Path, k: int) -> tuple[list[str], int]:
    """Write `k` good MIDI files of the corpus, spread over its size distribution, to `out_dir`;
    their paths and the corpus' good-file count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(corpus.archive_path) as zf:
        sizes = {vid: zf.getinfo(member).file_size for vid, member in corpus.good.items()}
        paths = []
        for vid in spread_sample(sizes, k):
            path = out_dir / f"{vid}.mid"
            path.write_bytes(zf.read(corpus.good[vid]))
            paths.append(str(path))
    return paths, len(sizes)


def real_midi_paths(folder: str | os.PathLike[str]) -> list[str]:
    """The MIDI files under `folder` (any depth), sorted."""
    return sorted(
        str(p) for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES
    )


@dataclass(frozen=True)
class Comparison:
    """Median timings on the same files, and how far the two parsers' results agree."""

    files: int
    notes: int  # notes over the files, as the naive loop counts them
    repeat: int
    backend: str
    workers: int
    naive_s: float
    single_s: float  # extract_all, one process
    pool_s: float  # extract_all, default pool
    parsers: dict[str, int]  # FeatureResult.parser of the pipeline's results
    both_parsed: int
    naive_failed: int
    pipeline_failed: int
    same_notes: int
    max_duration_diff: float
    mismatches: tuple[tuple[str, int, int], ...]  # (file name, naive n_notes, pipeline n_notes)

    def ms(self, seconds: float) -> float:
        return 1000 * seconds / max(1, self.files)

    def notes_per_s(self, seconds: float) -> float:
        return self.notes / seconds if seconds > 0 else 0.0


def compare(paths: list[str], repeat: int, backend: str | None = None) -> Comparison:
    """Naive loop, extract_all in one process and with the default pool on `paths`, interleaved
    `repeat` times; medians, and parity of n_notes / duration_s on the last run's results."""
    backend = backend or pipeline_backend()
    timings: dict[str, list[float]] = {"naive": [], "single": [], "pool": []}
    naive_out: list[dict | None] = []
    piped: list = []
    pipeline(
        paths[:POOL_MIN_FILES], None, backend
    )  # starts the forkserver, once a process as in `mta`
    for _ in range(max(1, repeat)):
        seconds, naive_out = naive(paths)
        timings["naive"].append(seconds)
        seconds, piped = pipeline(paths, 1, backend)
        timings["single"].append(seconds)
        seconds, _ = pipeline(paths, None, backend)
        timings["pool"].append(seconds)
    med = {name: statistics.median(values) for name, values in timings.items()}
    both = [
        (a, r.features, Path(path).name)
        for path, a, r in zip(paths, naive_out, piped, strict=True)
        if a is not None and r.features is not None
    ]
    return Comparison(
        files=len(paths),
        notes=sum(int(a["n_notes"]) for a in naive_out if a is not None),
        repeat=max(1, repeat),
        backend=backend,
        workers=default_workers(),
        naive_s=med["naive"],
        single_s=med["single"],
        pool_s=med["pool"],
        parsers=dict(Counter(r.parser or "none (failed)" for r in piped)),
        both_parsed=len(both),
        naive_failed=sum(a is None for a in naive_out),
        pipeline_failed=sum(r.features is None for r in piped),
        same_notes=sum(a["n_notes"] == b["n_notes"] for a, b, _ in both),
        max_duration_diff=max(
            (abs(float(a["duration_s"]) - float(b["duration_s"])) for a, b, _ in both),
            default=0.0,
        ),
        mismatches=tuple(
            (name, int(a["n_notes"]), int(b["n_notes"]))
            for a, b, name in both
            if a["n_notes"] != b["n_notes"]
        ),
    )


def table(c: Comparison, files_label: str) -> list[str]:
    """Markdown rows: per-file time and notes/s of each way of parsing `c.files` files."""
    pool = (
        f"{c.workers} worker processes"
        if c.files >= POOL_MIN_FILES
        else f"default workers (under {POOL_MIN_FILES} files: in the calling process)"
    )
    rows = [
        ("naive loop: `pretty_midi.PrettyMIDI` + the features, one process", c.naive_s),
        (f"pipeline parser ({c.backend}): `extract_all`, one process", c.single_s),
        (f"pipeline parser ({c.backend}): `extract_all`, {pool}", c.pool_s),
    ]
    return [
        f"| {files_label} ({c.files} files, {c.notes:,} notes; median of {c.repeat}) "
        "| wall time | per file | notes/s | vs naive |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {s:.2f} s | {c.ms(s):.2f} ms | {c.notes_per_s(s):,.0f} | "
            f"{c.naive_s / s if s > 0 else 0:.1f}x |"
            for label, s in rows
        ),
    ]


def parity(c: Comparison) -> str:
    parsers = ", ".join(f"{n} by {p}" for p, n in sorted(c.parsers.items()))
    failed = (
        f"; failed: {c.naive_failed} in pretty_midi, {c.pipeline_failed} in the pipeline"
        if c.naive_failed or c.pipeline_failed
        else ""
    )
    shown = "; ".join(
        f"`{name}`: {naive_n} in pretty_midi, {piped_n} in the pipeline"
        for name, naive_n, piped_n in c.mismatches[:MISMATCHES_SHOWN]
    )
    more = len(c.mismatches) - MISMATCHES_SHOWN
    differ = f" Differing: {shown}{f' and {more} more' if more > 0 else ''}." if shown else ""
    return (
        f"Parity on the {c.both_parsed} files both parsed: **{c.same_notes}/{c.both_parsed}** "
        f"have identical `n_notes`; the largest `duration_s` difference is "
        f"**{c.max_duration_diff:.6f} s** (pipeline results: {parsers}{failed}).{differ}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from mta_pipeline.demo.corpus import generate_corpus  # here: pool workers import __main__

    with tempfile.TemporaryDirectory() as tmp:
        corpus = generate_corpus(Path(tmp) / "corpus", count=args.count, realistic=True)
        paths, good = extract_sample(corpus, Path(tmp) / "midi", args.naive_sample)
        result = compare(paths, args.repeat)
    print(f"realistic corpus of {good} good files; {len(paths)} spread over the sizes")
    print("\n".join(table(result, "generated sample")))
    print(parity(result))
    real_dir = os.environ.get(REAL_MIDI_DIR)
    if real_dir:
        real = compare(real_midi_paths(real_dir), args.repeat)
        print("\n".join(table(real, f"real files in {REAL_MIDI_DIR}")))
        print(parity(real))


if __name__ == "__main__":
    main()
