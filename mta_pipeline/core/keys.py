"""Musical key helpers: estimate a key from pitch content and read the key a title names.

All key names are canonicalised to one spelling (sharps, "C# major" style) so that an
estimated key and a title key can be compared with plain string equality.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

PITCH_CLASS_NAMES: tuple[str, ...] = (
    "C",
    "C#",
    "D",
    "D#",
    "E",
    "F",
    "F#",
    "G",
    "G#",
    "A",
    "A#",
    "B",
)
MODES: tuple[str, str] = ("major", "minor")

# Majors first, then minors; index = mode_index * 12 + tonic pitch class.
KEY_NAMES: tuple[str, ...] = tuple(f"{pc} {mode}" for mode in MODES for pc in PITCH_CLASS_NAMES)

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
_KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def _standardise_rows(matrix: np.ndarray) -> np.ndarray:
    """Z-score each row so a dot product divided by 12 is a Pearson correlation."""
    centred = matrix - matrix.mean(axis=-1, keepdims=True)
    return centred / centred.std(axis=-1, keepdims=True)


def _build_profiles() -> np.ndarray:
    """24 x 12 matrix of standardised profiles, rows ordered like KEY_NAMES."""
    rows = [np.roll(profile, tonic) for profile in (_KK_MAJOR, _KK_MINOR) for tonic in range(12)]
    return _standardise_rows(np.array(rows, dtype=float))


_PROFILES = _build_profiles()


def estimate_key(pitch_class_weights: Sequence[float]) -> str | None:
    """Krumhansl–Kessler key estimate from a 12-bin pitch-class histogram (C first).

    Returns the key whose rotated profile has the highest Pearson correlation with the
    histogram; ties go to the earlier name in KEY_NAMES. Returns None when the histogram
    carries no tonal information: all weights zero, or all equal (correlation undefined).
    """
    weights = np.asarray(pitch_class_weights, dtype=float)
    if weights.shape != (12,):
        raise ValueError(f"expected 12 pitch-class weights, got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("pitch-class weights must be finite and non-negative")
    if np.ptp(weights) == 0:
        return None
    correlations = _PROFILES @ _standardise_rows(weights) / 12.0
    return KEY_NAMES[int(np.argmax(correlations))]


_LETTER_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}

# English form: a note letter, an optional accidental, then the word "major" or "minor".
# Requiring the mode word keeps "Flat Road", "B-A-C-H" or "Sonata in B-flat" from firing;
# the price is that prose such as "A Minor Masterpiece" reads as A minor.
_ENGLISH_KEY = (
    r"(?<![\w#♯♭])(?P<letter>[a-g])"
    r"(?P<acc>[\s-]?sharp|[\s-]?flat|#|♯|b|♭)?"
    r"[\s-]*(?P<mode>major|minor)\b"
)

# German form ("Des-Dur", "fis-moll", "H-Dur"): note name, hyphen or space, Dur/moll.
# Here "b" means B-flat and "h" means B, as in German usage.
_GERMAN_NOTE_PC = {
    "ces": 11,
    "c": 0,
    "cis": 1,
    "des": 1,
    "d": 2,
    "dis": 3,
    "es": 3,
    "e": 4,
    "eis": 5,
    "fes": 4,
    "f": 5,
    "fis": 6,
    "ges": 6,
    "g": 7,
    "gis": 8,
    "as": 8,
    "a": 9,
    "ais": 10,
    "b": 10,
    "h": 11,
    "his": 0,
}
_GERMAN_NOTES = "|".join(sorted(_GERMAN_NOTE_PC, key=len, reverse=True))
_GERMAN_KEY = rf"(?<![\w#♯♭])(?P<gnote>{_GERMAN_NOTES})[\s-]+(?P<gmode>dur|moll)\b"

_KEY_PATTERN = re.compile(f"{_ENGLISH_KEY}|{_GERMAN_KEY}", re.IGNORECASE)


def _accidental_offset(accidental: str | None) -> int:
    """Semitone shift of an English accidental token (None means natural)."""
    if not accidental:
        return 0
    token = accidental.strip(" \t-").lower()
    return 1 if token in ("sharp", "#", "♯") else -1


def _key_from_match(match: re.Match[str]) -> str:
    """Canonical KEY_NAMES spelling of one regex match."""
    if match.group("letter"):
        pc = _LETTER_PC[match.group("letter").lower()] + _accidental_offset(match.group("acc"))
        mode = match.group("mode").lower()
    else:
        pc = _GERMAN_NOTE_PC[match.group("gnote").lower()]
        mode = "major" if match.group("gmode").lower() == "dur" else "minor"
    return f"{PITCH_CLASS_NAMES[pc % 12]} {mode}"


def parse_title_key(title: str) -> str | None:
    """The first key a piece title names, spelled as in KEY_NAMES, or None.

    A key is recognised only as a note letter, an optional accidental (#, ♯, b, ♭,
    "sharp", "flat", with or without a hyphen or space) and then "major"/"minor"
    (case-insensitive), or in German form ("Des-Dur", "fis-moll"). Enharmonic spellings
    are folded onto sharps, e.g. "E-flat major" -> "D# major".
    """
    match = _KEY_PATTERN.search(title)
    return _key_from_match(match) if match else None


def canonical_key(name: str) -> str:
    """Canonical spelling of a key name such as "Db major"; ValueError if it names no key."""
    match = _KEY_PATTERN.fullmatch(name.strip())
    if match is None:
        raise ValueError(f"not a key name: {name!r}")
    return _key_from_match(match)


def keys_match(a: str | None, b: str | None) -> bool | None:
    """Whether two key names denote the same key; None when either key is unknown."""
    if a is None or b is None:
        return None
    return canonical_key(a) == canonical_key(b)
