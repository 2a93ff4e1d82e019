"""Synthetic piano performances at the size and shape of real GiantMIDI-Piano transcriptions.

Why: the small files of `corpus` (about 500 notes) hide how the pipeline behaves on the real
release, where a file holds 3,800 notes on average (median 2,800, a tail past 40,000), lasts 7
minutes on average and up to an hour, with dense chords and long sustain pedal. Calibrated on real
transcriptions: one piano track (program 0), 120 BPM, 4/4, 384 ticks per beat, velocities of
about 20-110, only 0/127 sustain pedal values.

Speed: a 10,855-file corpus holds about 41 million notes. pretty_midi's `write` costs ~45 µs a
note (mido objects and a comparison sort), so `midi_bytes` writes the same bytes from numpy
arrays; `Performance.to_pretty_midi` is the reference the tests compare it with.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass

import numpy as np
import pretty_midi

MEDIAN_NOTES = 2_800
MEAN_NOTES = 3_800
NOTES_SIGMA = math.sqrt(2 * math.log(MEAN_NOTES / MEDIAN_NOTES))  # log-normal: mean/median
MIN_NOTES = 100
MAX_NOTES = 50_000
MIN_DENSITY, MODE_DENSITY, MAX_DENSITY = 5.0, 8.0, 15.0  # notes per second, drawn per file
MAX_SECONDS = 3_720.0  # the longest real transcription is 62 minutes

RESOLUTION = 384  # ticks per beat, as in the GiantMIDI-Piano files
BPM = 120.0
TICKS_PER_SECOND = RESOLUTION * BPM / 60.0
TRACK_NAME = "Piano"
SUSTAIN = 64

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_BAR_SECONDS = 2.0  # one 4/4 bar at 120 BPM
# Textures: chord size probabilities (sizes 1..8), onset-gap scale, median note length (s).
_MELODY, _CHORDAL, _ARPEGGIO = 0, 1, 2
_TEXTURE_WEIGHTS = (0.45, 0.25, 0.30)
_SIZE_PROBS = np.array(
    [
        [0.55, 0.30, 0.10, 0.05, 0.0, 0.0, 0.0, 0.0],
        [0.12, 0.13, 0.20, 0.22, 0.13, 0.10, 0.06, 0.04],
        [0.80, 0.15, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
)
_SIZE_CDF = np.cumsum(_SIZE_PROBS, axis=1)
_GAP_SCALE = np.array([1.0, 1.6, 0.8])
_NOTE_SECONDS = np.array([0.18, 0.35, 0.9])
_ARPEGGIO_SHAPE = np.array([0, 1, 2, 3, 4, 5, 4, 3, 2, 1])  # chord-tone positions, up and down
_MELODY_STEPS = np.array([-3, -2, -1, 0, 1, 2, 3])
_MELODY_STEP_P = np.array([1, 3, 6, 2, 6, 3, 1]) / 22


@dataclass(frozen=True)
class Performance:
    """One performance as integer arrays; note arrays sorted by (start, pitch).

    Ticks are absolute at RESOLUTION ticks per beat and 120 BPM. Notes of one pitch never
    overlap and always last at least one tick, so a parser reads back exactly these notes.
    """

    starts: np.ndarray
    ends: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    pedal_ticks: np.ndarray
    pedal_values: np.ndarray

    def to_pretty_midi(
        self, midi_class: type[pretty_midi.PrettyMIDI] = pretty_midi.PrettyMIDI
    ) -> pretty_midi.PrettyMIDI:
        """The same performance as a PrettyMIDI object (the reference for `midi_bytes`)."""
        piano = pretty_midi.Instrument(program=0, name=TRACK_NAME)
        piano.notes = [
            pretty_midi.Note(v, p, s / TICKS_PER_SECOND, e / TICKS_PER_SECOND)
            for v, p, s, e in zip(
                self.velocities.tolist(),
                self.pitches.tolist(),
                self.starts.tolist(),
                self.ends.tolist(),
                strict=True,
            )
        ]
        piano.control_changes = [
            pretty_midi.ControlChange(SUSTAIN, v, t / TICKS_PER_SECOND)
            for t, v in zip(self.pedal_ticks.tolist(), self.pedal_values.tolist(), strict=True)
        ]
        midi = midi_class(resolution=RESOLUTION, initial_tempo=BPM)
        midi.instruments.append(piano)
        return midi


def sample_note_count(rng: random.Random) -> int:
    """Notes in one file: log-normal (median 2,800, mean 3,800), redrawn outside 100-50,000."""
    while True:
        count = round(rng.lognormvariate(math.log(MEDIAN_NOTES), NOTES_SIGMA))
        if MIN_NOTES <= count <= MAX_NOTES:
            return count


def realistic_performance(rng: random.Random, tonic: int = 0, mode: str = "major") -> Performance:
    """A piano performance in the given key; the same rng state gives the same performance.

    Sections of melody, block chords and pedalled arpeggios follow one another over a
    progression with a chord per bar; the notes-per-second density is drawn per file, so
    the duration follows from the note count (capped at MAX_SECONDS).
    """
    count = sample_note_count(rng)
    density = rng.triangular(MIN_DENSITY, MAX_DENSITY, MODE_DENSITY)
    seconds = min(count / density, MAX_SECONDS)
    gen = np.random.default_rng(rng.getrandbits(64))

    group_texture, section_of_group, sections = _sections(gen, count)
    sizes = _chord_sizes(gen, group_texture, count)
    groups = sizes.size
    group_texture, section_of_group = group_texture[:groups], section_of_group[:groups]
    onsets = _onsets(gen, sizes, group_texture, section_of_group, sections, seconds)

    group = np.repeat(np.arange(groups), sizes)
    voice = np.arange(count) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    texture = group_texture[group]
    bar = (onsets[group] // _BAR_SECONDS).astype(np.int64)
    chords = _chord_tones(gen, tonic, mode, int(bar.max()) + 1)
    shift = gen.integers(-5, 6, sections)[section_of_group][group]
    pitches = _pitches(gen, tonic, mode, chords, bar, group, voice, sizes[group], texture, shift)

    is_bass = (voice == 1) & (sizes[group] >= 3)
    lengths = _NOTE_SECONDS[texture] * np.exp(gen.normal(0.0, 0.6, count))
    lengths = np.clip(np.where(is_bass, 1.8 * lengths, lengths), 0.04, 6.0)
    starts = onsets[group] + np.abs(gen.normal(0.0, 0.008, count))  # a chord is never exact
    velocities = _velocities(gen, sections, section_of_group[group], voice, is_bass)
    end_time = float(np.max(starts + lengths))
    pedal_ticks, pedal_values = _pedal(gen, end_time)
    return _performance(starts, starts + lengths, pitches, velocities, pedal_ticks, pedal_values)


def realistic_midi(
    rng: random.Random,
    tonic: int = 0,
    mode: str = "major",
) -> bytes:
    """Standard MIDI File bytes of `realistic_performance(rng, tonic, mode)`."""
    return midi_bytes(realistic_performance(rng, tonic, mode))


# --- the performance ---------------------------------------------------------------------------


def _sections(gen: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Texture and section index of up to `count` onset groups; sections span 30-150 groups."""
    lengths = gen.integers(30, 150, count // 30 + 1)
    textures = gen.choice(3, lengths.size, p=_TEXTURE_WEIGHTS)
    section = np.repeat(np.arange(lengths.size), lengths)[:count]
    return textures[section], section, lengths.size


def _chord_sizes(gen: np.random.Generator, texture: np.ndarray, count: int) -> np.ndarray:
    """Notes per onset group, summing to exactly `count`."""
    draws = gen.random(texture.size)
    sizes = (draws[:, None] >= _SIZE_CDF[texture]).sum(axis=1) + 1
    sizes = np.minimum(sizes, 8)
    total = np.cumsum(sizes)
    groups = int(np.searchsorted(total, count)) + 1
    sizes = sizes[:groups].copy()
    sizes[-1] -= total[groups - 1] - count
    return sizes


def _onsets(
    gen: np.random.Generator,
    sizes: np.ndarray,
    texture: np.ndarray,
    section: np.ndarray,
    sections: int,
    seconds: float,
) -> np.ndarray:
    """Group onset times in seconds: gamma gaps, bigger chords and slower sections wider apart."""
    tempo = np.exp(gen.normal(0.0, 0.25, sections))[section]
    gaps = gen.gamma(4.0, 0.25, sizes.size) * _GAP_SCALE[texture] * np.sqrt(sizes) * tempo
    onsets = np.concatenate(([0.0], np.cumsum(gaps[:-1])))
    lead_in = gen.uniform(0.2, 1.5)
    span = max(seconds - lead_in - 1.0, 1.0)
    return lead_in + onsets * (span / max(onsets[-1], 1e-9))


def _chord_tones(gen: np.random.Generator, tonic: int, mode: str, bars: int) -> np.ndarray:
    """Pitch classes (root, third, fifth, seventh) per bar over I-x-y-V phrases."""
    scale = np.array(_SCALES[mode])
    degrees = gen.choice(np.array([0, 1, 3, 4, 5]), bars, p=[0.2, 0.15, 0.25, 0.2, 0.2])
    degrees[::4] = 0
    degrees[3::4] = 4
    steps = (degrees[:, None] + np.array([0, 2, 4, 6])) % 7
    return (tonic + scale[steps]) % 12


def _below(top: np.ndarray, pitch_class: np.ndarray) -> np.ndarray:
    """Highest pitch strictly below `top` with the given pitch class."""
    return top - 1 - (top - 1 - pitch_class) % 12


def _pitches(
    gen: np.random.Generator,
    tonic: int,
    mode: str,
    chords: np.ndarray,
    bar: np.ndarray,
    group: np.ndarray,
    voice: np.ndarray,
    size: np.ndarray,
    texture: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """Melody on top of each group, a bass under chords of 3+, chord tones in between;
    arpeggio sections run up and down the chord over two octaves."""
    scale = np.array(_SCALES[mode])
    groups = int(group.max()) + 1
    walk = np.cumsum(gen.choice(_MELODY_STEPS, groups, p=_MELODY_STEP_P)) + 16
    low, span = 9, 14  # scale degrees above the tonic in octave 3: about C4 to C6
    folded = (walk - low) % (2 * span)
    degree = low + np.where(folded > span, 2 * span - folded, folded)
    melody = (48 + tonic + 12 * (degree // 7) + scale[degree % 7])[group] + shift

    rows = np.arange(bar.size)
    tones = chords[bar]
    drop = 12 * (np.maximum(voice - 1, 0) // 3)
    inner = _below(melody, tones[rows, voice % 3]) - drop
    bass = _below(48 + shift, tones[:, 0])
    pitches = np.where(voice == 0, melody, np.where((voice == 1) & (size >= 3), bass, inner))

    position = _ARPEGGIO_SHAPE[group % _ARPEGGIO_SHAPE.size] + 2 * voice
    arpeggio = _below(60 + shift + 12 * (position // 3), tones[rows, position % 3])
    pitches = np.where(texture == _ARPEGGIO, arpeggio, pitches)
    return np.clip(pitches, 21, 108)


def _velocities(
    gen: np.random.Generator,
    sections: int,
    section: np.ndarray,
    voice: np.ndarray,
    is_bass: np.ndarray,
) -> np.ndarray:
    """Section dynamics around 64 plus per-note spread; melody louder, inner voices softer."""
    level = np.clip(gen.normal(64.0, 9.0, sections), 35.0, 90.0)[section]
    accent = np.where(voice == 0, 7.0, np.where(is_bass, 1.0, -6.0))
    velocities = level + accent + gen.normal(0.0, 9.0, voice.size)
    return np.clip(np.rint(velocities), 15, 115).astype(np.int64)


def _pedal(gen: np.random.Generator, end_time: float) -> tuple[np.ndarray, np.ndarray]:
    """Sustain pedal down 40-80 % of the time in presses of about a second, values 127/0."""
    share = gen.uniform(0.4, 0.8)
    press = gen.uniform(0.6, 1.6)
    cycles = math.ceil(end_time / press * 1.5) + 4
    downs = press * np.exp(gen.normal(0.0, 0.5, cycles))
    ups = np.maximum(press * (1 - share) / share * np.exp(gen.normal(0.0, 0.4, cycles)), 0.05)
    first = gen.uniform(0.0, 2.0)
    pressed = first + np.concatenate(([0.0], np.cumsum(downs + ups)[:-1]))
    released = pressed + downs
    keep = pressed < end_time - 0.1
    pressed, released = pressed[keep], np.minimum(released[keep], end_time)
    ticks = _ticks(np.column_stack((pressed, released)).ravel())
    values = np.tile(np.array([127, 0]), pressed.size)
    return ticks, values


def _ticks(seconds: np.ndarray) -> np.ndarray:
    return np.floor(seconds * TICKS_PER_SECOND + 0.5).astype(np.int64)


def _performance(
    starts: np.ndarray,
    ends: np.ndarray,
    pitches: np.ndarray,
    velocities: np.ndarray,
    pedal_ticks: np.ndarray,
    pedal_values: np.ndarray,
) -> Performance:
    """Round to ticks, drop same-pitch doubles, end each note by the next of its pitch."""
    start, end = _ticks(starts), _ticks(ends)
    order = np.lexsort((start, pitches))
    start, end, pitch, velocity = start[order], end[order], pitches[order], velocities[order]
    first = np.ones(start.size, dtype=bool)
    first[1:] = (pitch[1:] != pitch[:-1]) | (start[1:] != start[:-1])
    start, end, pitch, velocity = start[first], end[first], pitch[first], velocity[first]
    same_next = np.append(pitch[1:] == pitch[:-1], False)
    next_start = np.append(start[1:], np.iinfo(np.int64).max)
    end = np.where(same_next, np.minimum(end, next_start), end)
    end = np.maximum(end, start + 1)
    order = np.lexsort((pitch, start))
    return Performance(
        start[order], end[order], pitch[order], velocity[order], pedal_ticks, pedal_values
    )


# --- writing -----------------------------------------------------------------------------------


def _tempo_bytes() -> bytes:
    """Microseconds per beat as pretty_midi computes it from its tick scale."""
    tick_scale = 60.0 / (BPM * RESOLUTION)
    tempo = int(6e7 / (60.0 / (tick_scale * RESOLUTION)))
    return tempo.to_bytes(3, "big")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack(">I", len(data)) + data


def _variable_length(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MIDI variable-length quantities of non-negative ints below 2**28: (bytes, byte counts)."""
    counts = 1 + (values >= 1 << 7) + (values >= 1 << 14) + (values >= 1 << 21)
    shifts = 7 * (counts[:, None] - 1 - np.arange(4))  # most significant group first
    groups = (values[:, None] >> np.maximum(shifts, 0)) & 0x7F
    more = np.arange(4) < counts[:, None] - 1
    used = np.arange(4) < counts[:, None]
    encoded = (groups | np.where(more, 0x80, 0))[used]
    return encoded.astype(np.uint8), counts


def _events(performance: Performance) -> bytes:
    """The piano track's channel events, delta-timed and with running status, as mido writes
    what pretty_midi's `write` sorts: by tick, then control changes before notes, note-offs
    (note-on, velocity 0) and note-ons by pitch, then velocity."""
    p = performance
    notes = p.starts.size
    ticks = np.concatenate((p.starts, p.ends, p.pedal_ticks))
    status = np.concatenate((np.full(2 * notes, 0x90), np.full(p.pedal_ticks.size, 0xB0))).astype(
        np.int64
    )
    first = np.concatenate((p.pitches, p.pitches, np.full(p.pedal_ticks.size, SUSTAIN)))
    second = np.concatenate((p.velocities, np.zeros(notes, np.int64), p.pedal_values))
    kind = np.where(status == 0xB0, 8, 10)
    rank = (kind << 16) + (first << 8) + second
    order = np.lexsort((np.arange(ticks.size), rank, ticks))
    ticks, status, first, second = ticks[order], status[order], first[order], second[order]

    deltas, delta_counts = _variable_length(np.diff(ticks, prepend=0))
    new_status = np.ones(ticks.size, dtype=bool)  # the first follows a program change
    new_status[1:] = status[1:] != status[:-1]
    sizes = delta_counts + new_status + 2
    offsets = np.cumsum(sizes) - sizes
    delta_starts = np.cumsum(delta_counts) - delta_counts
    within = np.arange(int(delta_counts.sum())) - np.repeat(delta_starts, delta_counts)
    delta_slots = np.repeat(offsets, delta_counts) + within
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    out[delta_slots] = deltas
    after_delta = offsets + delta_counts
    out[after_delta[new_status]] = status[new_status]
    data_at = after_delta + new_status
    out[data_at] = first
    out[data_at + 1] = second
    return out.tobytes()


def midi_bytes(performance: Performance) -> bytes:
    """The bytes `performance.to_pretty_midi().write()` writes, about 20 times faster."""
    header = _chunk(b"MThd", struct.pack(">hhh", 1, 2, RESOLUTION))
    timing = (
        b"\x00\xff\x51\x03" + _tempo_bytes() + b"\x00\xff\x58\x04\x04\x02\x18\x08\x01\xff\x2f\x00"
    )
    name = TRACK_NAME.encode("latin-1")
    piano = (
        b"\x00\xff\x03"
        + bytes([len(name)])
        + name
        + b"\x00\xc0\x00"
        + _events(performance)
        + b"\x01\xff\x2f\x00"
    )
    return header + _chunk(b"MTrk", timing) + _chunk(b"MTrk", piano)
