"""One function over many files on every core, for the CPU-bound MIDI steps.

A process pool started with forkserver, the step's modules preloaded: each worker starts in
milliseconds with its libraries imported, and no threads of the parent (Dagster's, gRPC's)
are forked. Small batches run in the calling process, where a pool would cost more than it
saves.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

Progress = Callable[[int, int], None]
T = TypeVar("T")
# A MIDI file to work on: a path, or `(name, bytes)` already read (the steps read a shard's
# bytes from the lake in one piece and hand them to the workers).
Item = str | tuple[str, bytes]


def load(item: Item) -> tuple[str, bytes]:
    """`(name, bytes)` of an item; a path is read here (an OSError is the caller's to report)."""
    if isinstance(item, tuple):
        return item
    return item, Path(item).read_bytes()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def map_files(
    fn: Callable[[Item], T],
    paths: Sequence[Item],
    preload: Sequence[str],
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[T]:
    """`fn` of every item (a path or `(name, bytes)`), in order; `progress(done, total)` about
    every 10% of the files. `fn` must be picklable (a module-level function or a partial of one)."""
    workers = workers or default_workers()
    total = len(paths)
    step = max(1, total // 10)
    results: list[T] = []

    def add(result: T) -> None:
        results.append(result)
        if progress and len(results) % step == 0:
            progress(len(results), total)

    if workers == 1 or total < 8:
        for path in paths:
            add(fn(path))
        return results
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    chunk = max(1, min(32, total // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for result in pool.map(fn, paths, chunksize=chunk):
            add(result)
    return results
