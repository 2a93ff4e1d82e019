"""The plausibility rules: bounds, reasons, and both parsers' verdicts on broken files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mta_pipeline.core.feature_batch import extract_file
from mta_pipeline.core.midi_backends import FALLBACK, PRETTY_MIDI, SYMUSIC
from mta_pipeline.core.midi_features import parse_reference
from mta_pipeline.core.midi_native import native_parse
from mta_pipeline.core.midi_plausibility import (
    IMPLAUSIBLE_DURATION,
    IMPLAUSIBLE_TEMPO,
    MAX_DURATION_S,
    MAX_TEMPO_BPM,
    MIN_TEMPO_BPM,
    NO_PITCHED_NOTES,
    implausibility,
)
from mta_pipeline_tests.core.test_midi_parity import EDGE_CASES, off, on, piano, pm_file, raw_file

A_PIECE = {"n_notes": 3800, "duration_s": 420.0, "slowest_bpm": 120.0, "fastest_bpm": 120.0}
TEMPO_120 = b"\xff\x51\x03\x07\xa1\x20"  # the tempo event pretty_midi writes: 500,000 µs a beat
TEMPO_WORD_MAX = b"\xff\x51\x03\xff\xff\xff"  # 16,777,215 µs a beat: 3.58 BPM


def code(reason: str | None) -> str | None:
    return reason.split(":", 1)[0] if reason else None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, None),
        ({"n_notes": 1}, None),
        ({"n_notes": 0}, NO_PITCHED_NOTES),
        ({"duration_s": MAX_DURATION_S}, None),
        ({"duration_s": MAX_DURATION_S + 0.001}, IMPLAUSIBLE_DURATION),
        ({"duration_s": 150_994_951.0}, IMPLAUSIBLE_DURATION),
        ({"duration_s": math.nan}, IMPLAUSIBLE_DURATION),
        ({"slowest_bpm": MIN_TEMPO_BPM}, None),
        ({"slowest_bpm": MIN_TEMPO_BPM - 0.01}, IMPLAUSIBLE_TEMPO),
        ({"fastest_bpm": MAX_TEMPO_BPM}, None),
        ({"fastest_bpm": MAX_TEMPO_BPM + 0.01}, IMPLAUSIBLE_TEMPO),
        ({"fastest_bpm": math.inf}, IMPLAUSIBLE_TEMPO),
        ({"slowest_bpm": 3.58, "fastest_bpm": 3.58}, IMPLAUSIBLE_TEMPO),
        ({"slowest_bpm": 3.58, "duration_s": 1e9}, IMPLAUSIBLE_TEMPO),
        ({"n_notes": 0, "slowest_bpm": 3.58, "duration_s": 1e9}, NO_PITCHED_NOTES),
    ],
)
def test_rules_and_their_bounds(change: dict[str, float], expected: str | None) -> None:
    assert code(implausibility(**{**A_PIECE, **change})) == expected  # type: ignore[arg-type]


def test_a_reason_gives_the_measured_value_and_the_bound() -> None:
    assert implausibility(3800, 150_994_951.0, 120.0, 120.0) == (
        "implausible_duration: 150994951 s, above the 14400 s bound"
    )
    assert implausibility(3800, 9000.0, 3.58, 120.0) == (
        "implausible_tempo: 3.58–120.00 bpm, outside 20–500 bpm (duration 9000.0 s)"
    )
    assert implausibility(0, 5.5, 120.0, 120.0) == (
        "no_pitched_notes: no non-drum note in 5.5 s (drums only, or empty)"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (raw_file([on(0, 60), off(480, 60)]), (120.0, 120.0)),  # no tempo event
        (pm_file(piano([(60, 0, 1)]), tempo=3.58), (3.58, 3.58)),
        (EDGE_CASES["tempo changes"], (72.5, 180.0)),
        (EDGE_CASES["first tempo after tick 0"], (60.0, 120.0)),
    ],
    ids=["default", "3.58 bpm", "tempo changes", "first tempo after tick 0"],
)
def test_both_parsers_read_the_same_tempo_range(data: bytes, expected: tuple[float, float]) -> None:
    native, reference = native_parse(data).tempo_bpm, parse_reference(data).tempo_bpm
    assert native == pytest.approx(reference, rel=1e-12)
    assert native == pytest.approx(expected, rel=1e-5)  # tempo words are whole µs a beat


def _write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "f.mid"
    path.write_bytes(data)
    return str(path)


FILES = {
    "a piece": (pm_file(piano([(60, 0, 1), (64, 0.5, 2)])), None),
    "drums only": (pm_file(piano([(36, 0, 0.1), (38, 4, 5.5)], drum=True)), NO_PITCHED_NOTES),
    "no notes": (EDGE_CASES["no notes"], NO_PITCHED_NOTES),
    "over four hours": (
        pm_file(piano([(60, 0, 1), (62, MAX_DURATION_S, MAX_DURATION_S + 1)])),
        IMPLAUSIBLE_DURATION,
    ),
}


@pytest.mark.parametrize("backend", [SYMUSIC, PRETTY_MIDI])
@pytest.mark.parametrize("name", FILES)
def test_both_backends_judge_a_file_alike(tmp_path: Path, backend: str, name: str) -> None:
    data, expected = FILES[name]
    result = extract_file(_write(tmp_path, data), backend)
    assert result.features is not None and result.error is None  # parsed, then judged
    assert code(result.reject_reason) == expected


def test_a_file_without_notes_is_still_read_by_the_reference_too(tmp_path: Path) -> None:
    """symusic finding no note hands the file to pretty_midi, which confirms it before the
    rules reject it (so a file symusic silently emptied is still told apart: a parse error)."""
    result = extract_file(_write(tmp_path, FILES["drums only"][0]), SYMUSIC)
    assert result.parser == FALLBACK and result.features["n_notes"] == 0
    assert code(result.reject_reason) == NO_PITCHED_NOTES


@pytest.mark.parametrize("backend", [SYMUSIC, PRETTY_MIDI])
def test_a_broken_tempo_word_is_rejected_though_the_piece_stays_under_four_hours(
    tmp_path: Path, backend: str
) -> None:
    """A five-minute piece whose tempo reads 0xFFFFFF µs a beat lasts 2.8 hours: the duration
    bound alone would keep it."""
    data = pm_file(piano([(60 + i % 12, 0.5 * i, 0.5 * i + 0.4) for i in range(600)]))
    broken = data.replace(TEMPO_120, TEMPO_WORD_MAX, 1)
    assert broken != data
    result = extract_file(_write(tmp_path, broken), backend)
    assert 9000 < result.features["duration_s"] < MAX_DURATION_S
    assert result.reject_reason.startswith("implausible_tempo: 3.58 bpm, outside 20–500 bpm")


def test_a_parse_error_is_a_reject_reason_too(tmp_path: Path) -> None:
    result = extract_file(_write(tmp_path, b"MThd" + b"\x00" * 20), SYMUSIC)
    assert result.features is None
    assert result.reject_reason == f"parse_error: {result.error}"
