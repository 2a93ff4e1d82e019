"""Captions generated from the MIDI features: text every record has, even without YouTube text.

Deterministic templates (no model), so a caption says only what the features measured and the
same file always gets the same words. Each part has documented cut points:

- length: under 1 minute "a short piece", else "a N-minute piece" (rounded, at least 1);
- key: `key_estimate` ("in C minor"), left out when unknown;
- density (notes per second): below 4 sparse, below 10 moderately dense, else dense;
- dynamics (mean velocity): below 50 soft, below 80 moderately loud, else loud;
- pedalling (share of time with the sustain pedal down): below 0.1 little pedal, below 0.5
  some pedalling, else heavy pedalling;
- register (mean pitch): below MIDI 55 the low register, above 72 the high register, else the
  middle register;
- range: a span of 60 semitones or more "spanning most of the keyboard".

Records carry it in `caption`, and the card marks it as generated, never as human text.
"""

from __future__ import annotations

from collections.abc import Mapping

NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def _length(seconds: float) -> str:
    if seconds < 60:
        return "A short piece"
    minutes = max(1, round(seconds / 60))
    word = NUMBER_WORDS[minutes] if minutes < len(NUMBER_WORDS) else str(minutes)
    return f"A {word}-minute piece"


def _band(value: float, cuts: tuple[float, float], words: tuple[str, str, str]) -> str:
    return words[0] if value < cuts[0] else words[1] if value < cuts[1] else words[2]


def caption(features: Mapping[str, object]) -> str:
    """One sentence about the performance, e.g. "A four-minute piece in C minor, dense and
    loud, with heavy pedalling in the low register." Empty for a file without notes."""
    n_notes = features.get("n_notes") or 0
    if not n_notes:
        return ""
    parts = [_length(float(features.get("duration_s") or 0.0))]
    key = features.get("key_estimate")
    if key:
        parts[0] += f" in {key[0].upper()}{key[1:]}"
    density = _band(
        float(features.get("notes_per_s") or 0.0),
        (4, 10),
        ("sparse", "moderately dense", "dense"),
    )
    dynamics = _band(
        float(features.get("velocity_mean") or 0.0), (50, 80), ("soft", "moderately loud", "loud")
    )
    pedal = _band(
        float(features.get("pedal_ratio") or 0.0),
        (0.1, 0.5),
        ("little pedal", "some pedalling", "heavy pedalling"),
    )
    mean_pitch = float(features.get("pitch_mean") or 60.0)
    register = (
        "the low register"
        if mean_pitch < 55
        else "the high register"
        if mean_pitch > 72
        else "the middle register"
    )
    span = int(features.get("pitch_max") or 0) - int(features.get("pitch_min") or 0)
    sentence = f"{parts[0]}, {density} and {dynamics}, with {pedal} in {register}"
    if span >= 60:
        sentence += ", spanning most of the keyboard"
    return sentence + "."
