"""The fast path for MIDI features: symusic (a C++ parser) and numpy, equal to pretty_midi.

pretty_midi is the reference (`midi_features.extract_features`); this module parses 60-90
times faster a file (bench/BENCHMARKS.md) and gives the same features. symusic pairs each
note-off with the oldest open note-on of its pitch; three rules of pretty_midi's reader are
rebuilt from those notes:

- one note-off ends every note of its pitch still sounding, so overlapping notes of one pitch
  all end at the first note-off after their onset (`pretty_midi_ends`);
- a note-off that finds only a note-on of its own tick drops it: zero-length notes vanish;
- an instrument exists only once one of its notes ends, so a track without a kept note adds
  neither pedal nor end time.

These cases differ, all pinned by the parity tests; none occurs in files written note by note
with positive lengths by one writer (the transcriber's, pretty_midi's):

- a note-on written *before* a note-off of its pitch at one tick, with nothing else of that
  pitch sounding: pretty_midi drops the new note, we keep it (as if the note-off came first);
- a note-on left without a note-off of its own (pretty_midi writes a zero-length note so, its
  note-off first) before a later note of that pitch: pretty_midi ends both at the later
  note-off; symusic drops the unmatched one, and its notes do not show it: one note fewer;
- a text event after the last note: pretty_midi's end time counts it, symusic does not read
  text events;
- tempo, time signature and key signature events on a track other than the first: pretty_midi
  ignores them (and warns the file is invalid), symusic applies them.
"""

from __future__ import annotations

import numpy as np
import symusic

from mta_pipeline.core.midi_features import (
    SUSTAIN_CC,
    Notes,
    Parsed,
    Pedal,
    features_from_arrays,
)

MAX_TICK = 10_000_000  # pretty_midi refuses a file with an event at this tick as corrupt; so do we
_PITCH_SHIFT = 32  # (pitch << 32) | tick: one sortable int64 per (pitch, tick)


class CorruptMidi(ValueError):
    """symusic read the file, but pretty_midi's sanity checks refuse it."""


def native_features(data: bytes) -> dict[str, object]:
    """Features of MIDI bytes, as `midi_features.extract_features` computes them.

    Raises symusic's parse errors, or `CorruptMidi`.
    """
    return native_parse(data).features


def native_parse(data: bytes) -> Parsed:
    """`native_features` with the tempo range, as `midi_features.parse_reference` gives it."""
    score = symusic.Score.from_midi(data)
    if score.ticks_per_quarter <= 0:
        raise CorruptMidi("MIDI file has 0 ticks per quarter note")
    clock = TickClock(score.tempos.numpy(), score.ticks_per_quarter)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    pedals: list[Pedal] = []
    last_tick = _meta_end_tick(score, clock)
    largest = last_tick  # of any event: pretty_midi's corruption guard looks at them all
    for track in score.tracks:
        notes = {k: v.astype(np.int64) for k, v in track.notes.numpy().items()}  # no int32 wrap
        starts, ends, keep = pretty_midi_ends(notes["time"], notes["duration"], notes["pitch"])
        controls = track.controls.numpy()
        bends = track.pitch_bends.numpy()["time"]
        events = (_max(notes["time"] + notes["duration"]), _max(controls["time"]), _max(bends))
        largest = max(largest, *events)
        if not keep.any():  # pretty_midi makes an instrument only when it ends a note
            continue
        last_tick = max(last_tick, *events[1:], _max(ends))
        if track.is_drum:
            continue
        parts.append((starts, ends, notes["pitch"][keep], notes["velocity"][keep]))
        sustain = controls["number"] == SUSTAIN_CC
        pedals.append((clock.seconds(controls["time"][sustain]), controls["value"][sustain]))
    if largest >= MAX_TICK:
        raise CorruptMidi(f"MIDI file has a largest tick of {largest}, it is likely corrupt")
    starts, ends, pitches, velocities = (
        np.concatenate([p[i] for p in parts]) if parts else np.empty(0, np.int64) for i in range(4)
    )
    notes = Notes(clock.seconds(starts), clock.seconds(ends), pitches, velocities)
    duration = float(clock.seconds(np.array([last_tick]))[0])
    return Parsed(features_from_arrays(notes, pedals, duration), clock.tempo_range())


def pretty_midi_ends(
    onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, kept) in ticks of one track's notes as pretty_midi pairs them.

    `onsets`, `durations`, `pitches` are symusic's (first-in-first-out pairing). Zero-length
    notes are dropped (`kept` is the mask of the rest); every other note ends at the first
    note-off of its pitch strictly after its onset.
    """
    kept = durations > 0
    pitch = pitches[kept].astype(np.int64) << _PITCH_SHIFT
    on = pitch | onsets[kept].astype(np.int64)
    offs = np.sort(pitch | (onsets[kept].astype(np.int64) + durations[kept]))
    ends = offs[np.searchsorted(offs, on, side="right")]  # own note-off always qualifies
    return on & _TICK_MASK, ends & _TICK_MASK, kept


_TICK_MASK = (1 << _PITCH_SHIFT) - 1


class TickClock:
    """Ticks to seconds through the tempo map, in float64 as pretty_midi computes them."""

    def __init__(self, tempos: dict[str, np.ndarray], ticks_per_quarter: int) -> None:
        ticks, mspq = tempos["time"].astype(np.int64), tempos["mspq"].astype(np.float64)
        if ticks.size == 0 or ticks[0] != 0:  # before any tempo event: 120 BPM
            ticks, mspq = np.insert(ticks, 0, 0), np.insert(mspq, 0, 500_000.0)
        last = np.r_[ticks[1:] != ticks[:-1], True]  # of several at one tick, the last counts
        ticks, scale = ticks[last], mspq[last] / 1e6 / ticks_per_quarter
        change = np.r_[True, scale[1:] != scale[:-1]]  # pretty_midi skips a repeated tempo
        self.ticks, self.scale = ticks[change], scale[change]
        self.offsets = np.r_[0.0, np.cumsum(np.diff(self.ticks) * self.scale[:-1])]
        self.ticks_per_quarter = ticks_per_quarter

    def tempo_range(self) -> tuple[float, float]:
        """Slowest and fastest tempo (BPM) of the map, as pretty_midi's `get_tempo_changes`."""
        with np.errstate(divide="ignore"):  # a zero tempo word: infinitely fast
            bpm = 60.0 / (self.scale * self.ticks_per_quarter)
        return float(bpm.min()), float(bpm.max())

    def seconds(self, ticks: np.ndarray) -> np.ndarray:
        ticks = np.asarray(ticks, dtype=np.int64)
        if self.ticks.size == 1:  # one tempo, as in every GiantMIDI file
            return ticks * self.scale[0]
        segment = np.searchsorted(self.ticks, ticks, side="right") - 1
        return self.offsets[segment] + (ticks - self.ticks[segment]) * self.scale[segment]


def _meta_end_tick(score: symusic.Score, clock: TickClock) -> int:
    """Last tick of the events pretty_midi counts in its end time besides tracks' own."""
    times = [
        score.time_signatures.numpy()["time"],
        score.key_signatures.numpy()["time"],
        *(np.array([m.time for m in track.lyrics], np.int64) for track in score.tracks),
    ]
    return max(_max(clock.ticks), *(_max(t) for t in times))


def _max(ticks: np.ndarray) -> int:
    return int(ticks.max()) if ticks.size else 0
