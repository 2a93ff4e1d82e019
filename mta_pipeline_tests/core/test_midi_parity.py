"""Parity of the native parser (symusic + numpy) with the reference (pretty_midi).

The tolerance, stated once: `n_notes`, pitch range, `max_polyphony` and `key_estimate` are
identical; every other feature agrees within 1e-9 (relative, or absolute near zero). The cases
where pretty_midi's reader and ours differ by design (`midi_native`'s docstring) are pinned
exactly at the end.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from mta_pipeline.core.feature_batch import extract_file
from mta_pipeline.core.midi_backends import FALLBACK, PRETTY_MIDI, SYMUSIC
from mta_pipeline.core.midi_features import extract_features
from mta_pipeline.core.midi_native import CorruptMidi, native_features, pretty_midi_ends
from mta_pipeline.demo.corpus import generate_corpus

EXACT = ("n_notes", "pitch_min", "pitch_max", "max_polyphony", "key_estimate")
REAL_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "giantmidi_sample"


def assert_parity(data: bytes) -> dict[str, object]:
    native, reference = native_features(data), extract_features(data)
    assert list(native) == list(reference)
    for name, value in reference.items():
        if name in EXACT or value is None:
            assert native[name] == value, name
        else:
            assert native[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    return native


def pm_file(*instruments: pretty_midi.Instrument, tempo: float = 120.0) -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    pm.instruments.extend(instruments)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def piano(
    notes: Iterable[tuple[int, float, float]] = (),
    pedal: Iterable[tuple[float, int]] = (),
    *,
    drum: bool = False,
    program: int = 0,
) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=program, is_drum=drum)
    inst.notes = [pretty_midi.Note(70 + i % 40, p, s, e) for i, (p, s, e) in enumerate(notes)]
    inst.control_changes = [pretty_midi.ControlChange(64, v, t) for t, v in pedal]
    return inst


Event = tuple[int, mido.Message | mido.MetaMessage]


def raw_file(*tracks: list[Event], tpq: int = 480) -> bytes:
    """A file event by event, in the order given within a tick (pretty_midi cannot write
    velocity-0 note-ons, tempo changes or a chosen order)."""
    midi = mido.MidiFile(ticks_per_beat=tpq)
    for events in tracks:
        track, now = mido.MidiTrack(), 0
        for tick, message in sorted(events, key=lambda e: e[0]):  # stable: keeps tick order
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def on(tick: int, pitch: int, velocity: int = 64, channel: int = 0) -> Event:
    return tick, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(tick: int, pitch: int, channel: int = 0) -> Event:
    return tick, mido.Message("note_off", note=pitch, channel=channel)


def cc(tick: int, value: int, number: int = 64) -> Event:
    return tick, mido.Message("control_change", control=number, value=value)


def tempo(tick: int, bpm: float) -> Event:
    return tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


EDGE_CASES = {
    "zero-length notes, note-on first": raw_file(
        [on(0, 60), off(0, 60), on(100, 62), off(200, 62), on(300, 60), off(300, 60)]
    ),
    "zero-length note, the last of its pitch": pm_file(piano([(60, 0.5, 0.5), (62, 0.0, 1.0)])),
    "overlapping notes of one pitch": pm_file(
        piano([(60, 0.0, 1.0), (60, 0.5, 1.5), (60, 0.7, 0.9), (60, 2.0, 2.5), (64, 0.2, 3.0)])
    ),
    "note-on with velocity 0 ends a note": raw_file(
        [on(0, 60), on(240, 60, 0), on(240, 64), on(720, 64, 0), on(720, 67), off(960, 67)]
    ),
    "re-struck note, note-off first": raw_file(
        [on(0, 60), off(240, 60), on(240, 60), off(480, 60)]
    ),
    "several tracks": pm_file(
        piano([(60, 0, 1), (64, 0.5, 2)], [(0.0, 127), (1.5, 0)]),
        piano([(60, 0.25, 0.75), (48, 1.0, 3.0)], [(1.0, 100), (2.0, 0)], program=1),
        piano([(72, 2.5, 4.0)], program=2),
    ),
    "drums": pm_file(
        piano([(60, 0, 1), (62, 1, 2)]),
        piano([(36, 0, 0.1), (38, 4.0, 5.5)], [(0.0, 127)], drum=True),
    ),
    "sustain pedal on and off at one tick": raw_file(
        [on(0, 60), cc(0, 127), cc(240, 0), cc(240, 127), cc(480, 127), cc(480, 0), off(960, 60)]
    ),
    "sustain pedal off and on at one tick": raw_file(
        [on(0, 60), cc(0, 127), cc(240, 127), cc(240, 0), cc(720, 0), cc(720, 90), off(960, 60)]
    ),
    "tempo changes": raw_file(
        [
            tempo(0, 100),
            tempo(480, 100),  # a repeated tempo: pretty_midi keeps no change for it
            tempo(960, 180),
            tempo(1920, 72.5),
            on(0, 60),
            off(1200, 60),
            on(1000, 64),
            off(3000, 64),
            cc(500, 127),
            cc(2500, 0),
        ]
    ),
    "first tempo after tick 0": raw_file([tempo(960, 60), on(0, 60), off(1920, 60)]),
    "ends in a held pedal": pm_file(piano([(60, 0, 1), (64, 1, 2)], [(0.5, 127), (3.0, 20)])),
    "ends in a held pedal after a controller": pm_file(
        piano([(60, 0, 1)], [(0.5, 127), (4.0, 127)])
    ),
    "pitch bend after the notes": raw_file(
        [on(0, 60), off(480, 60), (2000, mido.Message("pitchwheel", pitch=100))]
    ),
    "a track whose only note is zero-length, with pedal": pm_file(
        piano([(60, 0, 1)]), piano([(64, 0.5, 0.5)], [(0.0, 127), (3.0, 0)], program=1)
    ),
    "a marker after the music": raw_file(
        [on(0, 60), off(480, 60), (4000, mido.MetaMessage("marker", text="end"))]
    ),
    "note-off at the last tick before the corruption guard": raw_file(
        [on(0, 60), off(9_999_999, 60)]
    ),
    "no notes": pm_file(piano([], [(0.0, 127), (2.0, 0)])),
    "empty": pm_file(),
}


def dense_overlaps(seed: int) -> bytes:
    """2,000 notes on eight pitches at random onsets and lengths: notes of one pitch overlap
    hundreds of times, as in real transcriptions (the realistic corpus never overlaps them)."""
    rng = np.random.default_rng(seed)
    starts = np.round(rng.uniform(0, 120, 2000), 3)
    lengths = np.round(rng.uniform(0.01, 3.0, 2000), 3)
    pitches = rng.choice([40, 43, 47, 52, 55, 59, 64, 67], 2000)
    notes = zip(pitches.tolist(), starts.tolist(), (starts + lengths).tolist(), strict=True)
    return pm_file(piano(notes, [(10.0, 127), (50.0, 0), (60.0, 100)]))


EDGE_CASES["dense overlapping notes of one pitch"] = dense_overlaps(0)
EDGE_CASES["dense overlapping notes of one pitch, another draw"] = dense_overlaps(1)


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_case_parity(name: str) -> None:
    assert_parity(EDGE_CASES[name])


def test_pretty_midi_pairing_from_first_in_first_out_notes() -> None:
    """symusic's notes of one pitch (0-200, 100-300, 300-300, 400-500) become pretty_midi's:
    every open note ends at the first note-off after it, and the zero-length note goes."""
    onsets = np.array([0, 100, 300, 400, 0], np.int32)
    durations = np.array([200, 200, 0, 100, 50], np.int32)
    pitches = np.array([60, 60, 60, 60, 61], np.int8)
    starts, ends, kept = pretty_midi_ends(onsets, durations, pitches)
    assert kept.tolist() == [True, True, False, True, True]
    assert sorted(zip(starts.tolist(), ends.tolist(), strict=True)) == [
        (0, 50),
        (0, 200),
        (100, 200),
        (400, 500),
    ]


def test_pairing_does_not_wrap_past_int32() -> None:
    """symusic's ticks are int32: an onset near 2^31 plus its length must not wrap around."""
    starts, ends, _ = pretty_midi_ends(
        np.array([2**31 - 10], np.int32), np.array([100], np.int32), np.array([60], np.int8)
    )
    assert (starts.tolist(), ends.tolist()) == ([2**31 - 10], [2**31 + 90])


def test_edge_cases_mean_what_they_say() -> None:
    """Guards the fixtures: the pedal and overlap cases really exercise pretty_midi's rules."""
    dense = extract_features(EDGE_CASES["dense overlapping notes of one pitch"])
    assert dense["n_notes"] == 2000
    overlap = extract_features(EDGE_CASES["overlapping notes of one pitch"])
    assert overlap["n_notes"] == 5 and overlap["max_polyphony"] == 4
    held = extract_features(EDGE_CASES["ends in a held pedal"])
    assert held["pedal_ratio"] == pytest.approx(2.5 / 3.0)
    assert extract_features(EDGE_CASES["drums"])["duration_s"] == pytest.approx(5.5)


@pytest.fixture(scope="module")
def realistic_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    import zipfile

    corpus = generate_corpus(tmp_path_factory.mktemp("parity"), count=24, realistic=True)
    with zipfile.ZipFile(corpus.archive_path) as zf:
        return [zf.read(member) for member in sorted(corpus.good.values())]


def test_realistic_corpus_parity(realistic_files: list[bytes]) -> None:
    notes = [assert_parity(data)["n_notes"] for data in realistic_files]
    assert max(notes) > 5_000  # long performances, not toy files


def _offs_first(data: bytes) -> bytes:
    """The same file with note-offs moved before note-ons within each tick."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    for track in midi.tracks:
        timed, now = [], 0
        for index, message in enumerate(track):
            now += message.time
            starts = message.type == "note_on" and message.velocity > 0
            timed.append((now, starts, index, message))
        timed.sort(key=lambda e: e[:3])
        now = 0
        for i, (tick, _, _, message) in enumerate(timed):
            track[i], now = message.copy(time=tick - now), tick
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="no ../shared/giantmidi_sample")
@pytest.mark.parametrize(
    "path",
    sorted(REAL_SAMPLE.glob("*.mid")) if REAL_SAMPLE.is_dir() else [],
    ids=lambda p: p.name[:24],
)
def test_real_file_parity(path: Path) -> None:
    """Real transcriptions: equal to pretty_midi once a tick's note-offs come first (already
    so in files the transcriber wrote; one of the six was re-saved note-on first)."""
    data = path.read_bytes()
    native = native_features(data)
    assert native == native_features(_offs_first(data))
    reference = extract_features(_offs_first(data))
    for name, value in reference.items():
        expected = value if name in EXACT else pytest.approx(value, rel=1e-9, abs=1e-9)
        assert native[name] == expected, name


def test_note_on_first_at_a_shared_tick_is_kept() -> None:
    """Difference 1: pretty_midi takes the note-off for the new note's and drops it."""
    data = raw_file([on(0, 60), on(100, 60), off(200, 60), on(300, 60), off(300, 60), off(500, 60)])
    assert extract_features(data)["n_notes"] == 2
    assert native_features(data)["n_notes"] == 3
    assert native_features(data) == native_features(_offs_first(data))
    assert_parity(_offs_first(data))


def test_unmatched_note_on_before_a_later_note_is_invisible() -> None:
    """Difference 2: pretty_midi writes a zero-length note note-off first; its note-on then
    waits for the next note-off of the pitch, which ends two notes for pretty_midi, one here."""
    data = pm_file(piano([(60, 0.5, 0.5), (60, 1.0, 2.0)]))
    assert extract_features(data)["n_notes"] == 2
    assert native_features(data)["n_notes"] == 1


def _write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / f"f{len(list(tmp_path.iterdir()))}.mid"
    path.write_bytes(data)
    return str(path)


def test_symusic_refuses_pretty_midi_reads(tmp_path: Path) -> None:
    data = bytearray(pm_file(piano([(60, 0, 1)])))
    data[8:10] = (7).to_bytes(2, "big")  # a MIDI format number symusic rejects
    result = extract_file(_write(tmp_path, bytes(data)), SYMUSIC)
    assert result.parser == FALLBACK and result.features["n_notes"] == 1


def test_both_refuse_names_both_errors(tmp_path: Path) -> None:
    result = extract_file(_write(tmp_path, b"MThd" + b"\x00" * 20), SYMUSIC)
    assert result.features is None
    assert result.error.startswith("symusic: ") and "; pretty_midi: " in result.error


def test_pretty_midi_refuses_symusic_reads(tmp_path: Path) -> None:
    """An unknown chunk before the track: pretty_midi gives up, symusic skips it (as the
    standard says readers should). Kept with the native parser, a reject with pretty_midi."""
    good = pm_file(piano([(60, 0, 1)]))
    data = good[:14] + b"XFIH\x00\x00\x00\x02ab" + good[14:]
    path = _write(tmp_path, data)
    native = extract_file(path, SYMUSIC)
    assert native.parser == SYMUSIC and native.features["n_notes"] == 1
    reference = extract_file(path, PRETTY_MIDI)
    assert reference.features is None and "MTrk" in reference.error


def test_zero_ticks_per_quarter_is_refused() -> None:
    data = bytearray(pm_file(piano([(60, 0, 1)])))
    data[12:14] = b"\x00\x00"
    with pytest.raises(CorruptMidi):
        native_features(bytes(data))


@pytest.mark.parametrize(
    "events",
    [
        [on(0, 60), off(10_000_000, 60)],
        [on(0, 60), off(480, 60), cc(10_000_000, 0)],
    ],
    ids=["note-off", "controller"],
)
def test_largest_tick_guard_matches_pretty_midi(events: list[Event]) -> None:
    data = raw_file(events)
    with pytest.raises(ValueError, match="likely corrupt"):
        extract_features(data)
    with pytest.raises(CorruptMidi, match="likely corrupt"):
        native_features(data)


def test_ticks_symusic_cannot_hold_are_refused_not_kept_empty(tmp_path: Path) -> None:
    """Past 2^31 ticks symusic drops the note without a word; the reference then refuses it."""
    step = (1 << 28) - 1  # the largest delta time a MIDI file can hold
    spacers = [(step * i, mido.MetaMessage("text", text=".")) for i in range(1, 9)]
    data = raw_file([on(0, 60), *spacers, off(step * 9, 60)])
    assert native_features(data)["n_notes"] == 0
    result = extract_file(_write(tmp_path, data), SYMUSIC)
    assert result.features is None
    assert result.error.startswith("symusic: read no notes; pretty_midi: ")


def test_an_empty_file_is_confirmed_by_the_reference(tmp_path: Path) -> None:
    result = extract_file(_write(tmp_path, EDGE_CASES["no notes"]), SYMUSIC)
    assert result.parser == FALLBACK and result.features["n_notes"] == 0


def test_backend_reference_path_is_labelled(tmp_path: Path) -> None:
    path = _write(tmp_path, pm_file(piano([(60, 0, 1)])))
    assert extract_file(path, PRETTY_MIDI).parser == PRETTY_MIDI
    assert extract_file(path, SYMUSIC).parser == SYMUSIC


@pytest.mark.filterwarnings("ignore:Tempo, Key or Time signature:RuntimeWarning")
def test_tempo_on_a_later_track_is_applied() -> None:
    """Difference 4: pretty_midi reads tempo from the first track only (and warns)."""
    data = raw_file([on(0, 60), off(960, 60)], [tempo(0, 60)])
    assert extract_features(data)["duration_s"] == pytest.approx(1.0)
    assert native_features(data)["duration_s"] == pytest.approx(2.0)


def test_text_event_after_the_music_does_not_lengthen_it() -> None:
    """Difference 3: pretty_midi's end time counts text events; symusic does not read them."""
    data = raw_file([on(0, 60), off(480, 60), (4000, mido.MetaMessage("text", text="fin"))])
    assert extract_features(data)["duration_s"] == pytest.approx(4000 / 960)
    assert native_features(data)["duration_s"] == pytest.approx(0.5)
