"""MIDI feature extraction: the pipeline's process pool against a naive single-process loop.

    .venv/bin/python -m bench.features [--count 200] [--repeat 3]

Generates a demo corpus of `--count` files, extracts them to a temporary folder, then times, in
the same run: a plain loop calling pretty_midi + features on each file, and `extract_all` (the
code `midi_features` runs). Prints medians, per-file times and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import pretty_midi

from mta_pipeline.core.feature_batch import default_workers, extract_all
from mta_pipeline.core.midi_features import features_from_midi
from mta_pipeline.demo.corpus import generate_corpus


def naive(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(Exception):
            features_from_midi(pretty_midi.PrettyMIDI(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = generate_corpus(Path(tmp) / "corpus", count=args.count)
        out = Path(tmp) / "midi"
        out.mkdir()
        with zipfile.ZipFile(corpus.archive_path) as zf:
            for vid, member in corpus.good.items():
                (out / f"{vid}.mid").write_bytes(zf.read(member))
        paths = sorted(str(p) for p in out.iterdir())
        timings: dict[str, list[float]] = {"naive": [], "pipeline": []}
        for _ in range(args.repeat):
            for name, fn in (("naive", naive), ("pipeline", extract_all)):
                started = time.perf_counter()
                fn(paths)
                timings[name].append(time.perf_counter() - started)
    n = len(paths)
    med = {k: statistics.median(v) for k, v in timings.items()}
    print(
        f"machine: {os.cpu_count()} CPUs, {default_workers()} usable; {n} files; "
        f"median of {args.repeat} runs"
    )
    for name in ("naive", "pipeline"):
        print(f"  {name:9s} {med[name]:7.2f} s  {1000 * med[name] / n:7.2f} ms/file")
    print(f"  speed-up  {med['naive'] / med['pipeline']:.2f}x")


if __name__ == "__main__":
    main()
