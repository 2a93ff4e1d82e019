"""Tests for the REMI token sequences, on performances generated and written in memory.

Times are generated as integer ticks (384 a beat, 120 BPM: 768 a second) so that pretty_midi
writes them exactly; the tokenizer's grid is 16 steps a beat, one step every 24 source ticks
(1/32 s), and an onset is rounded half up to its step.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import miditok
import numpy as np
import pretty_midi
import pytest
import symusic

from mta_pipeline.core import midi_tokens
from mta_pipeline.core.midi_tokens import (
    CONFIG_FILE_NAME,
    TOKENIZER_NAME,
    config_json,
    decode,
    load_tokenizer,
    make_tokenizer,
    tokenize,
    tokenizer_config,
)
from mta_pipeline.demo.realistic import midi_bytes, realistic_performance

RESOLUTION = 384
TICKS_PER_SECOND = 768
STEP = RESOLUTION // 16  # source ticks per grid step
STEP_SECONDS = STEP / TICKS_PER_SECOND  # 1/32 s
DECODED_TICKS_PER_SECOND = 32  # the decoded score: 16 ticks a beat at 120 BPM


@dataclass(frozen=True)
class Note:
    pitch: int
    start: int  # source ticks
    end: int
    velocity: int


Pedal = tuple[int, int]  # down, up (source ticks)


def _instrument(
    notes: Sequence[Note], pedals: Sequence[Pedal] = (), *, program: int = 0, is_drum: bool = False
) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
    for n in notes:
        start, end = n.start / TICKS_PER_SECOND, n.end / TICKS_PER_SECOND
        inst.notes.append(pretty_midi.Note(n.velocity, n.pitch, start, end))
    for down, up in pedals:
        inst.control_changes.append(pretty_midi.ControlChange(64, 127, down / TICKS_PER_SECOND))
        inst.control_changes.append(pretty_midi.ControlChange(64, 0, up / TICKS_PER_SECOND))
    return inst


def _midi_bytes(*instruments: pretty_midi.Instrument) -> bytes:
    pm = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=120.0)
    pm.instruments.extend(instruments)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def _off_tie(tick: int) -> int:
    """A tick that is not exactly half-way between two grid steps."""
    return tick + 1 if tick % STEP == STEP // 2 else tick


def _performance(seed: int) -> tuple[list[Note], list[Pedal]]:
    """About 300 notes: chords with a few ticks of spread, melody, varied velocities and
    lengths, a few doubled onsets (a short note and a re-strike of its pitch a few ticks
    later, as transcriptions produce), a final chord held 8 s, and pedal presses with lifts of
    at least two grid steps. Notes of one pitch never overlap."""
    rng = random.Random(seed)
    notes: list[Note] = []
    onset = 200
    while len(notes) < 290:
        size = rng.choice((1, 1, 2, 3, 4))
        for pitch in rng.sample(range(36, 97), size):
            start = _off_tie(onset + rng.randint(0, 10))
            notes.append(Note(pitch, start, start + rng.randint(20, 1400), rng.randint(20, 115)))
        if rng.random() < 0.05:  # a doubled onset
            pitch, start = rng.randrange(36, 97), _off_tie(onset + 2)
            notes.append(Note(pitch, start, start + 3, rng.randint(20, 60)))
            notes.append(Note(pitch, start + 6, start + 500, rng.randint(60, 115)))
        onset += rng.randint(40, 400)
    final = _off_tie(onset + 300)
    notes += [Note(pitch, final, final + 8 * TICKS_PER_SECOND, 70) for pitch in (36, 48, 55, 64)]
    return _without_overlaps(notes), _pedals(rng, final + 8 * TICKS_PER_SECOND)


def _without_overlaps(notes: list[Note]) -> list[Note]:
    """Each note ends by the next onset of its pitch; later notes at the same tick dropped."""
    by_pitch: dict[int, list[Note]] = defaultdict(list)
    for n in sorted(notes, key=lambda n: (n.pitch, n.start)):
        if by_pitch[n.pitch] and by_pitch[n.pitch][-1].start == n.start:
            continue
        by_pitch[n.pitch].append(n)
    kept = []
    for same in by_pitch.values():
        for n, nxt in zip(same, [*same[1:], None], strict=True):
            end = n.end if nxt is None else min(n.end, nxt.start)
            kept.append(Note(n.pitch, n.start, end, n.velocity))
    return sorted(kept, key=lambda n: (n.start, n.pitch))


def _pedals(rng: random.Random, until: int) -> list[Pedal]:
    pedals, tick = [], 100
    while tick < until:
        down = _off_tie(tick)
        up = _off_tie(down + rng.randint(300, 900))
        pedals.append((down, up))
        tick = up + rng.randint(2 * STEP + 2, 150)
    return pedals


def _step(tick: int) -> int:
    return (tick + STEP // 2) // STEP


def _groups(notes: list[Note]) -> dict[tuple[int, int], list[Note]]:
    """Source notes by (pitch, onset grid step): each group becomes one token note."""
    groups: dict[tuple[int, int], list[Note]] = defaultdict(list)
    for n in notes:
        groups[(n.pitch, _step(n.start))].append(n)
    return groups


def _decoded_notes(score: symusic.Score) -> dict[tuple[int, int], symusic.Note]:
    """Decoded notes by (pitch, onset tick); the pairs are unique."""
    assert len(score.tracks) == 1
    notes = {(n.pitch, n.time): n for n in score.tracks[0].notes}
    assert len(notes) == len(score.tracks[0].notes)
    return notes


@pytest.fixture(scope="module")
def performance() -> tuple[list[Note], list[Pedal], bytes]:
    notes, pedals = _performance(seed=11)
    return notes, pedals, _midi_bytes(_instrument(notes, pedals))


def test_fixture_parses_to_the_generated_notes(performance) -> None:
    notes, pedals, data = performance
    (track,) = symusic.Score.from_midi(data).tracks
    parsed = sorted((n.pitch, n.time, n.end, n.velocity) for n in track.notes)
    assert parsed == sorted((n.pitch, n.start, n.end, n.velocity) for n in notes)
    assert [(p.time, p.end) for p in track.pedals] == pedals


def test_round_trip_keeps_notes_up_to_the_grid(performance) -> None:
    notes, _, data = performance
    groups = _groups(notes)
    assert 250 < len(groups) < len(notes)  # some doubled onsets merge
    decoded = _decoded_notes(decode(tokenize(data)))

    assert set(decoded) == {(pitch, step) for pitch, step in groups}
    assert {n.pitch for n in notes} == {pitch for pitch, _ in decoded}
    for (pitch, step), group in groups.items():
        note = decoded[(pitch, step)]
        for source in group:
            onset_error = note.time / DECODED_TICKS_PER_SECOND - source.start / TICKS_PER_SECOND
            assert abs(onset_error) <= STEP_SECONDS / 2
        assert abs(note.velocity - max(n.velocity for n in group)) <= 2  # 32 bins, 4 apart
        longest = max(n.end - n.start for n in group) / TICKS_PER_SECOND  # a step at least
        assert note.duration / DECODED_TICKS_PER_SECOND == pytest.approx(longest, abs=STEP_SECONDS)


def test_round_trip_keeps_an_8_second_final_chord(performance) -> None:
    notes, _, data = performance
    last = max(n.start for n in notes)
    decoded = decode(tokenize(data)).tracks[0].notes
    held = [n for n in decoded if n.time == _step(last)]
    assert len(held) == 4
    assert all(n.duration == 8 * DECODED_TICKS_PER_SECOND for n in held)


def test_round_trip_keeps_sustain_pedal(performance) -> None:
    _, pedals, data = performance
    track = decode(tokenize(data)).tracks[0]
    assert len(track.pedals) == len(pedals)
    for pedal, (down, up) in zip(track.pedals, pedals, strict=True):
        assert (pedal.time, pedal.end) == (_step(down), _step(up))
        for decoded, source in ((pedal.time, down), (pedal.end, up)):
            error = decoded / DECODED_TICKS_PER_SECOND - source / TICKS_PER_SECOND
            assert abs(error) <= STEP_SECONDS / 2
    values = Counter((c.number, c.value) for c in track.controls)
    assert values == {(64, 127): len(pedals), (64, 0): len(pedals)}  # written as CC64


def test_tokens_are_int32_ids_of_the_vocabulary(performance) -> None:
    tokens = tokenize(performance[2])
    assert tokens.dtype == np.int32
    assert tokens.ndim == 1
    assert tokens.min() >= len(midi_tokens.SPECIAL_TOKENS)  # no PAD/BOS/EOS/MASK inside
    assert tokens.max() < make_tokenizer().vocab_size
    assert np.array_equal(tokenize(performance[2]), tokens)


def test_decode_accepts_lists_and_arrays(performance) -> None:
    tokens = tokenize(performance[2])
    assert decode(tokens.tolist()) == decode(tokens)
    assert decode(np.empty(0, np.int32)).note_num() == 0


def test_multi_track_file_is_one_sequence_without_drums() -> None:
    right = [Note(60 + i % 12, 200 + 192 * i, 380 + 192 * i, 80) for i in range(40)]
    left = [Note(48 + i % 12, 210 + 384 * i, 590 + 384 * i, 60) for i in range(20)]
    drum_pitches = (36, 38, 42)  # kick, snare, hi-hat: on the keyboard, in no piano track
    drums = [Note(pitch, 200 + 96 * i, 240 + 96 * i, 100) for i, pitch in enumerate(drum_pitches)]
    pedals = [(300, 2000), (2100, 5000)]
    data = _midi_bytes(
        _instrument(right),
        _instrument(left, pedals, program=1),  # not program 0: the pedal must still encode
        _instrument(drums, is_drum=True),
    )
    tokens = tokenize(data)
    assert tokens.ndim == 1

    decoded = decode(tokens).tracks[0]
    pitches = Counter(n.pitch for n in decoded.notes)
    assert pitches == Counter(n.pitch for n in right + left)
    assert not set(pitches) & set(drum_pitches)
    # symusic 0.6.0 reads this track's (channel 1) first press as starting at tick 0
    assert [(p.time, p.end) for p in decoded.pedals] == [
        (_step(300), _step(2000)),
        (_step(2100), _step(5000)),
    ]
    one_track = _midi_bytes(_instrument(right + left, pedals))
    assert np.array_equal(tokens, tokenize(one_track))


def test_same_key_in_two_tracks_is_one_note() -> None:
    a = Note(60, 100, 400, 50)
    b = Note(60, 105, 900, 90)  # the same grid step: merged, longest and loudest
    decoded = decode(tokenize(_midi_bytes(_instrument([a]), _instrument([b])))).tracks[0]
    (note,) = decoded.notes
    assert (note.pitch, note.time, note.duration) == (60, _step(100), round(800 / STEP))
    assert abs(note.velocity - 90) <= 2


def test_sustain_is_read_from_cc64_values() -> None:
    piano = _instrument([Note(60, 0, 4000, 80)])
    values = [(240, 100), (480, 120), (960, 30), (1440, 64), (1920, 63), (2400, 127)]
    piano.control_changes = [
        pretty_midi.ControlChange(64, value, tick / TICKS_PER_SECOND) for tick, value in values
    ]  # down from 64: 100 (120 holds), 30 lifts, 64 presses, 63 lifts, 127 never released
    pedals = decode(tokenize(_midi_bytes(piano))).tracks[0].pedals
    assert [(p.time, p.end) for p in pedals] == [(10, 40), (60, 80)]


@pytest.mark.parametrize(
    "instruments",
    [
        [],
        [_instrument([], [(100, 900)])],  # pedal only
        [_instrument([Note(38, 0, 100, 100)], is_drum=True)],  # drums only
        [_instrument([Note(12, 0, 100, 80), Note(120, 0, 100, 80)])],  # outside the keyboard
    ],
    ids=["no-tracks", "pedal-only", "drums-only", "off-keyboard"],
)
def test_file_without_piano_notes_gives_empty_int32(instruments) -> None:
    tokens = tokenize(_midi_bytes(*instruments))
    assert tokens.dtype == np.int32
    assert tokens.shape == (0,)


@pytest.mark.parametrize("cut", [0, 10, 100, None])
def test_corrupt_bytes_raise(performance, cut: int | None) -> None:
    data = b"not a MIDI file at all" if cut is None else performance[2][:cut]
    with pytest.raises(RuntimeError):
        tokenize(data)


def test_config_json_is_what_save_writes(tmp_path: Path) -> None:
    fresh = miditok.REMI(tokenizer_config())  # not the cached one
    fresh.save(tmp_path / CONFIG_FILE_NAME)
    assert (tmp_path / CONFIG_FILE_NAME).read_bytes() == config_json()
    saved = json.loads(config_json())
    assert saved["tokenization"] == "REMI"
    assert TOKENIZER_NAME.startswith("miditok-REMI-v")


def test_config_json_is_the_same_in_another_process() -> None:
    code = (
        "import hashlib; from mta_pipeline.core.midi_tokens import config_json; "
        "print(hashlib.sha256(config_json()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == hashlib.sha256(config_json()).hexdigest()


def test_loaded_tokenizer_decodes_the_same_notes(performance, tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_bytes(config_json())
    tokens = tokenize(performance[2])
    for path in (tmp_path, tmp_path / CONFIG_FILE_NAME):
        loaded = load_tokenizer(path)
        assert loaded.vocab == make_tokenizer().vocab
        assert decode(tokens, tokenizer=loaded) == decode(tokens)
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == config_json()


def test_realistic_performance_round_trip() -> None:
    """A realistic 1,900-note performance: notes merge only by (pitch, grid step)."""
    perf = realistic_performance(random.Random(4))
    data = midi_bytes(perf)
    started = time.perf_counter()
    tokens = tokenize(data)
    seconds = time.perf_counter() - started
    expected = {(int(p), _step(int(s))) for p, s in zip(perf.pitches, perf.starts, strict=True)}
    decoded = _decoded_notes(decode(tokens))
    assert set(decoded) == expected
    print(
        f"\n{perf.starts.size} notes: {1000 * seconds:.1f} ms, {tokens.size} tokens, "
        f"{tokens.size / perf.starts.size:.2f} tokens a note, {tokens.nbytes} bytes"
    )
