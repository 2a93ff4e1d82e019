"""Feature extraction over many files on every core, with the parser the user chose.

`symusic` (the default) parses natively and computes the features with numpy
(`midi_native`); a file symusic refuses, or finds no note in, is parsed again by pretty_midi, so
no file pretty_midi reads is lost, and the result says which parser made it. `pretty_midi`
runs the reference path alone. Files are spread over every core (`pool.map_files`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mta_pipeline.core.midi_backends import BACKENDS, FALLBACK, PRETTY_MIDI, SYMUSIC
from mta_pipeline.core.midi_features import extract_features
from mta_pipeline.core.midi_native import native_features
from mta_pipeline.core.pool import Progress, default_workers, map_files

__all__ = ["FeatureResult", "default_workers", "extract_all", "extract_file"]
PRELOAD = ("mta_pipeline.core.feature_batch", "pretty_midi", "symusic")


@dataclass(frozen=True)
class FeatureResult:
    """Features of one file, or why no parser could read it; which parser made the features
    (`parser`: symusic, pretty_midi or pretty_midi_fallback) and the seconds it took."""

    path: str
    features: dict[str, object] | None
    error: str | None
    parser: str | None = None
    seconds: float = 0.0


def extract_file(path: str, backend: str = SYMUSIC) -> FeatureResult:
    """Never raises for a bad file: the error becomes a reject reason in the caller."""
    started = time.perf_counter()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return FeatureResult(path, None, _describe(exc))
    errors: list[str] = []
    if backend == SYMUSIC:
        try:
            features = native_features(data)
            if features["n_notes"]:
                return FeatureResult(path, features, None, SYMUSIC, time.perf_counter() - started)
            # symusic drops what it cannot read (ticks past 2^31, say) without a word, so a
            # file without notes is read by the reference as well: refused, or confirmed empty
            errors.append("symusic: read no notes")
        except Exception as exc:
            errors.append(f"symusic: {_describe(exc)}")
    try:
        features = extract_features(data)
    except Exception as exc:
        errors.append(f"pretty_midi: {_describe(exc)}" if errors else _describe(exc))
        return FeatureResult(path, None, "; ".join(errors)[:500])
    parser = FALLBACK if errors else PRETTY_MIDI
    return FeatureResult(path, features, None, parser, time.perf_counter() - started)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:240]


def extract_all(
    paths: Sequence[str],
    workers: int | None = None,
    progress: Progress | None = None,
    backend: str = SYMUSIC,
) -> list[FeatureResult]:
    """Results in the order of `paths`; `progress(done, total)` about every 10% of the files."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown MIDI backend {backend!r}: use one of {', '.join(BACKENDS)}")
    extract = functools.partial(extract_file, backend=backend)
    return map_files(extract, paths, PRELOAD, workers, progress)
