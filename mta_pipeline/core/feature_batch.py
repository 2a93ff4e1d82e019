"""Feature extraction over many files on every core, with the parser the user chose.

`symusic` (the default) parses natively and computes the features with numpy
(`midi_native`); a file symusic refuses, or finds no note in, is parsed again by pretty_midi, so
no file pretty_midi reads is lost, and the result says which parser made it. `pretty_midi`
runs the reference path alone. Whichever parser read a file, the plausibility rules
(`midi_plausibility`) then judge its features. Files are spread over every core
(`pool.map_files`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mta_pipeline.core.archive import PARSE_ERROR
from mta_pipeline.core.midi_backends import BACKENDS, FALLBACK, PRETTY_MIDI, SYMUSIC
from mta_pipeline.core.midi_features import Parsed, parse_reference
from mta_pipeline.core.midi_native import native_parse
from mta_pipeline.core.midi_plausibility import implausibility
from mta_pipeline.core.pool import Item, Progress, default_workers, load, map_files

__all__ = ["FeatureResult", "default_workers", "extract_all", "extract_file"]
PRELOAD = ("mta_pipeline.core.feature_batch", "pretty_midi", "symusic")


@dataclass(frozen=True)
class FeatureResult:
    """Features of one file, or why no parser could read it; which parser made the features
    (`parser`: symusic, pretty_midi or pretty_midi_fallback) and the seconds it took. A file
    that parses but is not data (`implausible`: a reject reason, code first) keeps its
    features, so the run can still tell how fast it was parsed."""

    path: str
    features: dict[str, object] | None
    error: str | None
    parser: str | None = None
    seconds: float = 0.0
    implausible: str | None = None

    @property
    def reject_reason(self) -> str | None:
        """The file's `midi_rejects` reason, or None when its features are data."""
        if self.features is None:
            return f"{PARSE_ERROR}: {self.error}"
        return self.implausible


def extract_file(item: Item, backend: str = SYMUSIC) -> FeatureResult:
    """Never raises for a bad file: the error becomes a reject reason in the caller. `item` is a
    path or `(name, bytes)`; the result's `path` is the path or the name."""
    started = time.perf_counter()
    path = item if isinstance(item, str) else item[0]
    try:
        path, data = load(item)
    except OSError as exc:
        return FeatureResult(path, None, _describe(exc))
    errors: list[str] = []
    if backend == SYMUSIC:
        try:
            parsed = native_parse(data)
            if parsed.features["n_notes"]:
                return _judged(path, parsed, SYMUSIC, started)
            # symusic drops what it cannot read (ticks past 2^31, say) without a word, so a
            # file without notes is read by the reference as well: refused, or confirmed empty
            errors.append("symusic: read no notes")
        except Exception as exc:
            errors.append(f"symusic: {_describe(exc)}")
    try:
        parsed = parse_reference(data)
    except Exception as exc:
        errors.append(f"pretty_midi: {_describe(exc)}" if errors else _describe(exc))
        return FeatureResult(path, None, "; ".join(errors)[:500])
    return _judged(path, parsed, FALLBACK if errors else PRETTY_MIDI, started)


def _judged(path: str, parsed: Parsed, parser: str, started: float) -> FeatureResult:
    """The result of a parsed file, with the plausibility rules' verdict on it."""
    features = parsed.features
    n_notes, duration = int(features["n_notes"]), float(features["duration_s"])
    verdict = implausibility(n_notes, duration, *parsed.tempo_bpm)
    return FeatureResult(path, features, None, parser, time.perf_counter() - started, verdict)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:240]


def extract_all(
    paths: Sequence[Item],
    workers: int | None = None,
    progress: Progress | None = None,
    backend: str = SYMUSIC,
) -> list[FeatureResult]:
    """Results in the order of `paths` (paths or `(name, bytes)`); `progress(done, total)`
    about every 10% of the files."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown MIDI backend {backend!r}: use one of {', '.join(BACKENDS)}")
    extract = functools.partial(extract_file, backend=backend)
    return map_files(extract, paths, PRELOAD, workers, progress)
