"""Tests for the captions generated from MIDI features."""

from __future__ import annotations

import pytest

from mta_pipeline.core.captions import caption

BASE = {
    "duration_s": 241.0,
    "n_notes": 2400,
    "key_estimate": "C minor",
    "notes_per_s": 12.0,
    "velocity_mean": 85.0,
    "pedal_ratio": 0.7,
    "pitch_mean": 50.0,
    "pitch_min": 30,
    "pitch_max": 80,
}


def test_the_issue_example() -> None:
    assert caption(BASE) == (
        "A four-minute piece in C minor, dense and loud, with heavy pedalling in the low register."
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"duration_s": 30.0}, "A short piece in"),
        ({"duration_s": 3700.0}, "A 62-minute piece"),
        ({"key_estimate": None}, "A four-minute piece, dense"),
        ({"notes_per_s": 2.0}, "sparse and"),
        ({"notes_per_s": 6.0}, "moderately dense and"),
        ({"velocity_mean": 40.0}, "and soft,"),
        ({"velocity_mean": 60.0}, "and moderately loud,"),
        ({"pedal_ratio": 0.0}, "with little pedal"),
        ({"pedal_ratio": 0.3}, "with some pedalling"),
        ({"pitch_mean": 64.0}, "in the middle register."),
        ({"pitch_mean": 76.0}, "in the high register."),
        ({"pitch_min": 21, "pitch_max": 100}, "register, spanning most of the keyboard."),
        ({"key_estimate": "F# major"}, "in F# major"),
    ],
)
def test_each_band(change: dict, words: str) -> None:
    assert words in caption({**BASE, **change})


def test_no_notes_no_caption() -> None:
    assert caption({**BASE, "n_notes": 0}) == ""
    assert caption({}) == ""


def test_deterministic() -> None:
    assert caption(dict(BASE)) == caption(dict(reversed(BASE.items())))
