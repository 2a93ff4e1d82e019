"""Per-file MIDI features for the dataset: size, range, dynamics, density, pedalling, key.

The features are computed with numpy from flat arrays (`features_from_arrays`), whichever
parser produced them: pretty_midi here, the reference, or symusic (`midi_native`), the fast path
the pipeline runs by default.
"""

from __future__ import annotations

import io
from typing import NamedTuple

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


class Notes(NamedTuple):
    """All notes of a file's non-drum instruments as flat arrays: onsets and offsets in
    seconds, pitches and velocities."""

    starts: np.ndarray
    ends: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray


Pedal = tuple[np.ndarray, np.ndarray]  # one instrument's sustain CC times (s) and values


class Parsed(NamedTuple):
    """A parser's features of one file and the slowest and fastest tempo (BPM) of its tempo
    map, which are not features (every GiantMIDI file is at 120) but tell a broken file."""

    features: dict[str, object]
    tempo_bpm: tuple[float, float]


def extract_features(data: bytes) -> dict[str, object]:
    """The reference: parse MIDI bytes with pretty_midi and compute the features; parse errors
    propagate for the caller to log."""
    return parse_reference(data).features


def parse_reference(data: bytes) -> Parsed:
    """`extract_features` with the tempo range, for the plausibility rules."""
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    tempi = pm.get_tempo_changes()[1]
    return Parsed(features_from_midi(pm), (float(tempi.min()), float(tempi.max())))


def features_from_midi(pm: pretty_midi.PrettyMIDI) -> dict[str, object]:
    """Features of a pretty_midi object over all its non-drum instruments."""
    instruments = [inst for inst in pm.instruments if not inst.is_drum]
    pedals = [_sustain_events(inst) for inst in instruments]
    return features_from_arrays(_note_arrays(instruments), pedals, float(pm.get_end_time()))


def features_from_arrays(notes: Notes, pedals: list[Pedal], duration: float) -> dict[str, object]:
    """Features keyed and ordered as FEATURE_COLUMNS, from any parser's arrays.

    `duration` is the file's end time (last event of any kind, drums included, as pretty_midi's
    `get_end_time`). Values are plain Python ints/floats/str; pitch, velocity and key stats are
    None for a file without notes.
    """
    n_notes = len(notes.pitches)
    features: dict[str, object] = {
        "duration_s": duration,
        "n_notes": n_notes,
        **_pitch_velocity_stats(notes.pitches, notes.velocities),
        "notes_per_s": n_notes / duration if duration > 0 else 0.0,
        "pedal_ratio": _pedal_ratio(pedals, duration),
        "max_polyphony": _max_polyphony(notes.starts, notes.ends),
        "key_estimate": estimate_key(
            _pitch_class_histogram(notes.pitches, notes.ends - notes.starts)
        ),
    }
    return {column: features[column] for column in FEATURE_COLUMNS}


def _note_arrays(instruments: list[pretty_midi.Instrument]) -> Notes:
    notes = [note for inst in instruments for note in inst.notes]
    return Notes(
        np.fromiter((n.start for n in notes), dtype=float, count=len(notes)),
        np.fromiter((n.end for n in notes), dtype=float, count=len(notes)),
        np.fromiter((n.pitch for n in notes), dtype=np.int64, count=len(notes)),
        np.fromiter((n.velocity for n in notes), dtype=np.int64, count=len(notes)),
    )


def _sustain_events(instrument: pretty_midi.Instrument) -> Pedal:
    events = [cc for cc in instrument.control_changes if cc.number == SUSTAIN_CC]
    return (
        np.fromiter((cc.time for cc in events), dtype=float, count=len(events)),
        np.fromiter((cc.value for cc in events), dtype=np.int64, count=len(events)),
    )


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

    At equal times offsets count first, so a note ending exactly when another starts does not
    overlap it; zero-length notes never sound. The count peaks just after some onset: onsets
    so far minus offsets so far.
    """
    sounding = ends > starts
    if not np.any(sounding):
        return 0
    onsets, offsets = np.sort(starts[sounding]), np.sort(ends[sounding])
    started = np.arange(1, onsets.size + 1)
    last = np.r_[onsets[1:] != onsets[:-1], True]  # after every onset at that time
    ended = np.searchsorted(offsets, onsets[last], side="right")
    return int((started[last] - ended).max())


def _pedal_intervals(pedal: Pedal, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """(down, up) times of one instrument's sustain pedal; still down at the end lifts at
    duration."""
    times, values = pedal
    if times.size == 0:
        return np.empty(0), np.empty(0)
    order = np.argsort(times, kind="stable")
    times, down = times[order], (values[order] >= PEDAL_DOWN_MIN_VALUE).astype(np.int8)
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


def _pedal_ratio(pedals: list[Pedal], duration: float) -> float:
    """Share of [0, duration] with the sustain pedal down on any non-drum instrument."""
    if duration <= 0:
        return 0.0
    intervals = [_pedal_intervals(pedal, duration) for pedal in pedals]
    presses = np.clip(np.concatenate([p for p, _ in intervals] + [np.empty(0)]), 0.0, duration)
    releases = np.clip(np.concatenate([r for _, r in intervals] + [np.empty(0)]), 0.0, duration)
    return _covered_length(presses, releases) / duration
