"""Tests for MIDI feature extraction, on small files built and round-tripped in memory."""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence

import pretty_midi
import pytest

from mta_pipeline.core.midi_features import FEATURE_COLUMNS, extract_features, features_from_midi

Note = tuple[int, float, float, int]  # pitch, start, end, velocity


def _instrument(
    notes: Sequence[Note] = (),
    pedal: Sequence[tuple[float, int]] = (),
    *,
    is_drum: bool = False,
) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=0, is_drum=is_drum)
    for pitch, start, end, velocity in notes:
        inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end))
    for time, value in pedal:
        inst.control_changes.append(pretty_midi.ControlChange(number=64, value=value, time=time))
    return inst


def _midi_bytes(*instruments: pretty_midi.Instrument) -> bytes:
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.extend(instruments)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def _features(*instruments: pretty_midi.Instrument) -> dict[str, object]:
    return extract_features(_midi_bytes(*instruments))


C_MAJOR_SCALE = (60, 62, 64, 65, 67, 69, 71, 72)
SCALE_VELOCITIES = (40, 50, 60, 70, 80, 90, 100, 110)


def _scale_notes() -> list[Note]:
    """C4..C5 ascending, half a second each, touching end to start."""
    return [
        (pitch, 0.5 * i, 0.5 * (i + 1), vel)
        for i, (pitch, vel) in enumerate(zip(C_MAJOR_SCALE, SCALE_VELOCITIES, strict=True))
    ]


def test_c_major_scale_features() -> None:
    features = _features(_instrument(_scale_notes()))
    assert list(features) == list(FEATURE_COLUMNS)
    assert features["duration_s"] == pytest.approx(4.0)
    assert features["n_notes"] == 8
    assert features["pitch_min"] == 60
    assert features["pitch_max"] == 72
    assert features["pitch_mean"] == pytest.approx(66.25)
    assert features["velocity_mean"] == pytest.approx(75.0)
    assert features["velocity_std"] == pytest.approx(statistics.pstdev(SCALE_VELOCITIES))
    assert features["notes_per_s"] == pytest.approx(2.0)
    assert features["pedal_ratio"] == 0.0
    assert features["max_polyphony"] == 1  # consecutive notes only touch
    assert features["key_estimate"] == "C major"


def test_feature_types_are_plain_python() -> None:
    features = _features(_instrument(_scale_notes(), [(0.0, 127), (1.0, 0)]))
    int_columns = {"n_notes", "pitch_min", "pitch_max", "max_polyphony"}
    for column in FEATURE_COLUMNS:
        value = features[column]
        if column == "key_estimate":
            assert type(value) is str
        elif column in int_columns:
            assert type(value) is int, column
        else:
            assert type(value) is float, column


def test_a_minor_harmonic_figure() -> None:
    # Am - E7 - Am: A-C-E arpeggio, G#-B-D-E, then A-C-E with a held bass A.
    figure = [57, 60, 64, 69, 56, 59, 62, 64, 57, 60, 64, 69]
    notes: list[Note] = [(p, 0.25 * i, 0.25 * (i + 1), 80) for i, p in enumerate(figure)]
    notes.append((45, 0.0, 3.0, 70))
    features = _features(_instrument(notes))
    assert features["key_estimate"] == "A minor"
    assert features["max_polyphony"] == 2
    assert features["duration_s"] == pytest.approx(3.0)


def test_polyphony_counts_chords_and_ignores_touching_notes() -> None:
    c_triad: list[Note] = [(60, 0.0, 1.0, 80), (64, 0.0, 1.0, 80), (67, 0.0, 1.0, 80)]
    f_triad: list[Note] = [(65, 1.0, 2.0, 80), (69, 1.0, 2.0, 80), (72, 1.0, 2.0, 80)]
    assert _features(_instrument(c_triad + f_triad))["max_polyphony"] == 3


def test_polyphony_counts_overlap_across_instruments() -> None:
    c_triad: list[Note] = [(60, 0.0, 1.0, 80), (64, 0.0, 1.0, 80), (67, 0.0, 1.0, 80)]
    f_triad: list[Note] = [(65, 1.0, 2.0, 80), (69, 1.0, 2.0, 80), (72, 1.0, 2.0, 80)]
    bridge: list[Note] = [(48, 0.5, 1.5, 80)]
    features = _features(_instrument(c_triad + f_triad), _instrument(bridge))
    assert features["max_polyphony"] == 4
    assert features["n_notes"] == 7


def test_drum_notes_are_ignored() -> None:
    drums = _instrument([(36, 0.0, 1.0, 127), (38, 0.0, 1.0, 127)], is_drum=True)
    features = _features(_instrument([(60, 0.0, 1.0, 64)]), drums)
    assert features["n_notes"] == 1
    assert features["max_polyphony"] == 1
    assert features["velocity_std"] == 0.0


def test_pedal_ratio_two_presses() -> None:
    pedal = [(0.0, 127), (2.0, 0), (3.0, 100), (4.0, 63)]  # 63 is already "up"
    features = _features(_instrument([(60, 0.0, 5.0, 80)], pedal))
    assert features["duration_s"] == pytest.approx(5.0)
    assert features["pedal_ratio"] == pytest.approx(0.6)


def test_pedal_repeated_down_values_do_not_restart_press() -> None:
    pedal = [(0.0, 64), (1.0, 90), (1.5, 127), (2.0, 0), (3.0, 127), (3.5, 80), (4.0, 10)]
    features = _features(_instrument([(60, 0.0, 5.0, 80)], pedal))
    assert features["pedal_ratio"] == pytest.approx(0.6)


def test_pedal_events_at_equal_times_keep_file_order() -> None:
    # The last of several same-time events decides the pedal state.
    pm = pretty_midi.PrettyMIDI()
    pedal = [(0.0, 127), (2.0, 127), (2.0, 0), (3.0, 0), (3.0, 127), (4.0, 0)]
    pm.instruments.append(_instrument([(60, 0.0, 5.0, 80)], pedal))
    assert features_from_midi(pm)["pedal_ratio"] == pytest.approx(0.6)


def test_pedal_still_down_at_end_counts_until_duration() -> None:
    features = _features(_instrument([(60, 0.0, 5.0, 80)], [(4.0, 127)]))
    assert features["pedal_ratio"] == pytest.approx(0.2)


def test_pedal_union_over_instruments() -> None:
    first = _instrument([(60, 0.0, 5.0, 80)], [(0.0, 127), (2.0, 0)])
    second = _instrument([(48, 0.0, 5.0, 80)], [(1.0, 127), (3.0, 0)])
    assert _features(first, second)["pedal_ratio"] == pytest.approx(0.6)


def test_empty_midi() -> None:
    for features in (_features(), _features(_instrument())):
        assert features == {
            "duration_s": 0.0,
            "n_notes": 0,
            "pitch_min": None,
            "pitch_max": None,
            "pitch_mean": None,
            "velocity_mean": None,
            "velocity_std": None,
            "notes_per_s": 0.0,
            "pedal_ratio": 0.0,
            "max_polyphony": 0,
            "key_estimate": None,
        }


def test_features_from_midi_without_file_round_trip() -> None:
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(_instrument([(60, 0.0, 1.0, 80), (67, 0.5, 1.0, 80)]))
    features = features_from_midi(pm)
    assert features["duration_s"] == 1.0
    assert features["max_polyphony"] == 2
    assert features["notes_per_s"] == 2.0


def test_zero_length_notes_never_sound() -> None:
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(_instrument([(60, 0.0, 1.0, 80), (64, 0.0, 0.0, 80)]))
    features = features_from_midi(pm)
    assert features["n_notes"] == 2
    assert features["max_polyphony"] == 1


@pytest.mark.parametrize("data", [b"", b"not a midi file", b"MThd\x00\x00\x00\x06\x00"])
def test_corrupt_bytes_raise(data: bytes) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the caller records whatever pretty_midi raises
        extract_features(data)
