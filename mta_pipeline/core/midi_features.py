"""Per-file MIDI features for the dataset: size, range, dynamics, density, pedalling, key.

Runs on every GiantMIDI-Piano file, so the feature step is numpy-vectorised and stays
small next to the cost of parsing the MIDI file itself.
"""

from __future__ import annotations

import io

import numpy as np
import pretty_midi

from mta_pipeline.core.keys import estimate_key

FEATURE_COLUMNS: tuple[str, ...] = (
    "duration_s",
    "n_notes",
    "pitch_min",
    "pitch_max",
    "pitch_mean",
    "velocity_mean",
    "velocity_std",
    "notes_per_s",
    "pedal_ratio",
    "max_polyphony",
    "key_estimate",
)

SUSTAIN_CC = 64
PEDAL_DOWN_MIN_VALUE = 64


def extract_features(data: bytes) -> dict[str, object]:
    """Parse MIDI bytes and compute features; parse errors propagate for the caller to log."""
    return features_from_midi(pretty_midi.PrettyMIDI(io.BytesIO(data)))


def features_from_midi(pm: pretty_midi.PrettyMIDI) -> dict[str, object]:
    """Features over all non-drum instruments, keyed and ordered as FEATURE_COLUMNS.

    Values are plain Python ints/floats/str; pitch, velocity and key stats are None for a
    file without notes.
    """
    instruments = [inst for inst in pm.instruments if not inst.is_drum]
    starts, ends, pitches, velocities = _note_arrays(instruments)
    duration = float(pm.get_end_time())
    n_notes = len(pitches)
    features: dict[str, object] = {
        "duration_s": duration,
        "n_notes": n_notes,
        **_pitch_velocity_stats(pitches, velocities),
        "notes_per_s": n_notes / duration if duration > 0 else 0.0,
        "pedal_ratio": _pedal_ratio(instruments, duration),
        "max_polyphony": _max_polyphony(starts, ends),
        "key_estimate": estimate_key(_pitch_class_histogram(pitches, ends - starts)),
    }
    return {column: features[column] for column in FEATURE_COLUMNS}


def _note_arrays(
    instruments: list[pretty_midi.Instrument],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends (float s), pitches and velocities (int) of all notes, as flat arrays."""
    notes = [note for inst in instruments for note in inst.notes]
    starts = np.fromiter((n.start for n in notes), dtype=float, count=len(notes))
    ends = np.fromiter((n.end for n in notes), dtype=float, count=len(notes))
    pitches = np.fromiter((n.pitch for n in notes), dtype=np.int64, count=len(notes))
    velocities = np.fromiter((n.velocity for n in notes), dtype=np.int64, count=len(notes))
    return starts, ends, pitches, velocities


def _pitch_velocity_stats(pitches: np.ndarray, velocities: np.ndarray) -> dict[str, object]:
    """Pitch range/mean and velocity mean/population std; all None without notes."""
    if pitches.size == 0:
        keys = ("pitch_min", "pitch_max", "pitch_mean", "velocity_mean", "velocity_std")
        return dict.fromkeys(keys)
    return {
        "pitch_min": int(pitches.min()),
        "pitch_max": int(pitches.max()),
        "pitch_mean": float(pitches.mean()),
        "velocity_mean": float(velocities.mean()),
        "velocity_std": float(velocities.std()),
    }


def _pitch_class_histogram(pitches: np.ndarray, durations: np.ndarray) -> list[float]:
    """Total sounding time per pitch class (C first): the key estimator's input."""
    weights = np.clip(durations, 0.0, None)
    return np.bincount(pitches % 12, weights=weights, minlength=12).tolist()


def _max_polyphony(starts: np.ndarray, ends: np.ndarray) -> int:
    """Most notes sounding at once.

    A sweep over +1 onsets and -1 offsets; at equal times offsets sort first, so a note
    ending exactly when another starts does not overlap it. Zero-length notes never sound.
    """
    sounding = ends > starts
    if not np.any(sounding):
        return 0
    times = np.concatenate((starts[sounding], ends[sounding]))
    steps = np.concatenate((np.ones(sounding.sum(), np.int64), -np.ones(sounding.sum(), np.int64)))
    order = np.lexsort((steps, times))
    return int(np.cumsum(steps[order]).max())


def _pedal_intervals(
    instrument: pretty_midi.Instrument, duration: float
) -> tuple[np.ndarray, np.ndarray]:
    """(down, up) times of the sustain pedal; a pedal still down at the end lifts at duration."""
    events = [
        (cc.time, cc.value >= PEDAL_DOWN_MIN_VALUE)
        for cc in instrument.control_changes
        if cc.number == SUSTAIN_CC
    ]
    if not events:
        return np.empty(0), np.empty(0)
    times = np.array([t for t, _ in events], dtype=float)
    down = np.array([d for _, d in events], dtype=np.int8)
    order = np.argsort(times, kind="stable")
    times, down = times[order], down[order]
    change = np.diff(down, prepend=np.int8(0))
    presses, releases = times[change == 1], times[change == -1]
    if presses.size > releases.size:
        releases = np.append(releases, duration)
    return presses, releases


def _covered_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Length of the union of [start, end) intervals, by a +1/-1 sweep."""
    if starts.size == 0:
        return 0.0
    times = np.concatenate((starts, ends))
    steps = np.concatenate((np.ones(starts.size, np.int64), -np.ones(ends.size, np.int64)))
    order = np.argsort(times, kind="stable")
    times, depth = times[order], np.cumsum(steps[order])
    return float(np.sum(np.diff(times)[depth[:-1] > 0]))


def _pedal_ratio(instruments: list[pretty_midi.Instrument], duration: float) -> float:
    """Share of [0, duration] with the sustain pedal down on any non-drum instrument."""
    if duration <= 0:
        return 0.0
    intervals = [_pedal_intervals(inst, duration) for inst in instruments]
    presses = np.clip(np.concatenate([p for p, _ in intervals] + [np.empty(0)]), 0.0, duration)
    releases = np.clip(np.concatenate([r for _, r in intervals] + [np.empty(0)]), 0.0, duration)
    return _covered_length(presses, releases) / duration
