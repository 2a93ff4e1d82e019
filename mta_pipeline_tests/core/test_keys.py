"""Tests for key estimation, title-key parsing and key comparison."""

from __future__ import annotations

import numpy as np
import pytest

from mta_pipeline.core.keys import (
    KEY_NAMES,
    canonical_key,
    estimate_key,
    keys_match,
    parse_title_key,
)

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _histogram(pitch_classes: dict[int, float]) -> list[float]:
    weights = [0.0] * 12
    for pc, weight in pitch_classes.items():
        weights[pc % 12] += weight
    return weights


def test_key_names_are_24_sharp_spellings() -> None:
    assert len(KEY_NAMES) == 24
    assert len(set(KEY_NAMES)) == 24
    assert KEY_NAMES[:3] == ("C major", "C# major", "D major")
    assert KEY_NAMES[-1] == "B minor"
    assert not any("b " in name or "♭" in name for name in KEY_NAMES)


def test_estimate_c_major_scale() -> None:
    assert estimate_key(_histogram(dict.fromkeys(MAJOR_SCALE, 1.0))) == "C major"


def test_estimate_tonic_triad_emphasis() -> None:
    weights = _histogram({**dict.fromkeys(MAJOR_SCALE, 1.0), 0: 4.0, 4: 2.0, 7: 3.0})
    assert estimate_key(weights) == "C major"


def test_estimate_a_harmonic_minor() -> None:
    # A harmonic minor with weight on the A-minor triad.
    weights = _histogram({9: 4.0, 11: 1.0, 0: 3.0, 2: 1.0, 4: 3.0, 5: 1.0, 8: 1.5})
    assert estimate_key(weights) == "A minor"


@pytest.mark.parametrize("tonic", range(12))
def test_estimate_is_transposition_equivariant(tonic: int) -> None:
    major = _histogram({(pc + tonic): 1.0 for pc in MAJOR_SCALE} | {tonic: 3.0})
    assert estimate_key(major) == KEY_NAMES[tonic]
    profile_minor = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
    assert estimate_key(np.roll(profile_minor, tonic)) == KEY_NAMES[12 + tonic]


def test_estimate_without_tonal_information_is_none() -> None:
    assert estimate_key([0.0] * 12) is None
    assert estimate_key([2.5] * 12) is None


@pytest.mark.parametrize("bad", [[1.0] * 11, [1.0] * 13, [-1.0] + [1.0] * 11, [np.nan] * 12])
def test_estimate_rejects_malformed_histograms(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        estimate_key(bad)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Nocturne in C minor", "C minor"),
        ("Sonata in E-flat Major, Hob. XVI:52", "D# major"),
        ("Scherzo No. 2 in B flat minor, Op. 31", "A# minor"),
        ("Romance in F-sharp major, Op. 28 No. 2", "F# major"),
        ("Impromptu in Bb major", "A# major"),
        ("Prelude in c# minor", "C# minor"),
        ("Sonata No. 14 in C-sharp minor, Op. 27 No. 2", "C# minor"),
        ("Prelude in D♭ major", "C# major"),
        ("Waltz (G major)", "G major"),
        ("A minor", "A minor"),
        ("Etude B♭ minor", "A# minor"),
        ("Study in F♯ minor", "F# minor"),
        ("Mazurka in F# MINOR", "F# minor"),
        ("Prelude in Ab major", "G# major"),
        ("Polonaise in Cb major", "B major"),
        ("Fantasy in E# minor", "F minor"),
        ("Sonata in G-Flat Major", "F# major"),
        ("Waltz in D-major", "D major"),
        ("Klaviersonate Des-Dur", "C# major"),
        ("Präludium fis-moll", "F# minor"),
        ("Sonate B-Dur", "A# major"),
        ("Fuge h-moll", "B minor"),
        ("Sonate Es-Dur", "D# major"),
        ("Sonata in C major (Sonata facile), K. 545 in E minor", "C major"),
        ("A Minor Masterpiece?", "A minor"),
    ],
)
def test_parse_title_key(title: str, expected: str) -> None:
    assert parse_title_key(title) == expected
    assert expected in KEY_NAMES


@pytest.mark.parametrize(
    "title",
    [
        "Ballade No. 1, Op. 23",
        "Flat Road",
        "B-A-C-H",
        "Sonata in B-flat, K. 570",
        "Songs of a Majority",
        "Rhapsody minor",
        "Etude minority report",
        "",
    ],
)
def test_parse_title_key_negatives(title: str) -> None:
    assert parse_title_key(title) is None


def test_canonical_key() -> None:
    assert canonical_key("Db major") == "C# major"
    assert canonical_key("A# minor") == "A# minor"
    with pytest.raises(ValueError):
        canonical_key("Ballade")


def test_keys_match() -> None:
    assert keys_match(None, "C major") is None
    assert keys_match("C major", None) is None
    assert keys_match(None, None) is None
    assert keys_match("C major", "C major") is True
    assert keys_match("C major", "C minor") is False
    assert keys_match("D# major", "Eb major") is True
