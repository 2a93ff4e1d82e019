"""Feature extraction over many files on every core.

Parsing MIDI in pure Python (mido, under pretty_midi) is CPU-bound, so files are spread over a
process pool. The pool uses the forkserver start method with the feature module preloaded: each
worker starts in milliseconds with pretty_midi already imported, and no threads of the parent
(Dagster's, gRPC's) are forked.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mta_pipeline.core.midi_features import extract_features

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FeatureResult:
    """Features of one file, or the exception class and message that stopped its parse."""

    path: str
    features: dict[str, object] | None
    error: str | None


def extract_file(path: str) -> FeatureResult:
    """Never raises for a bad file: the error becomes a reject reason in the caller."""
    try:
        return FeatureResult(path, extract_features(Path(path).read_bytes()), None)
    except Exception as exc:
        return FeatureResult(path, None, f"{type(exc).__name__}: {exc}"[:500])


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _context() -> mp.context.BaseContext:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["mta_pipeline.core.feature_batch"])
    return ctx


def extract_all(
    paths: Sequence[str], workers: int | None = None, progress: Progress | None = None
) -> list[FeatureResult]:
    """Results in the order of `paths`; `progress(done, total)` about every 10% of the files."""
    workers = workers or default_workers()
    total = len(paths)
    step = max(1, total // 10)
    results: list[FeatureResult] = []
    if workers == 1 or total < 8:
        for path in paths:
            results.append(extract_file(path))
            if progress and len(results) % step == 0:
                progress(len(results), total)
        return results
    chunk = max(1, min(32, total // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        for result in pool.map(extract_file, paths, chunksize=chunk):
            results.append(result)
            if progress and len(results) % step == 0:
                progress(len(results), total)
    return results
