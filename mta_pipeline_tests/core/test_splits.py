"""Tests for the deterministic train/validation/test split by composer."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import unicodedata
from collections import Counter

import pytest

from mta_pipeline.core.splits import composer_key, split_for

SPLITS = {"train", "validation", "test"}
N_COMPOSERS = 2_000


def _composers(n: int = N_COMPOSERS) -> list[tuple[str, str]]:
    return [(f"Surname{i:04d}", f"Firstname{i:04d}") for i in range(n)]


def test_values_are_only_the_three_splits() -> None:
    seen = {split_for(s, f) for s, f in _composers()}
    assert seen == SPLITS


@pytest.mark.parametrize(
    ("surname", "firstname"),
    [(None, None), ("", ""), ("Anonymous", None), (None, "Johann"), ("Bach", "")],
)
def test_missing_names_still_get_a_split(surname: str | None, firstname: str | None) -> None:
    assert split_for(surname, firstname) in SPLITS


def test_missing_and_empty_names_are_the_same_composer() -> None:
    assert split_for(None, None) == split_for("", "")
    assert split_for("Bach", None) == split_for("Bach", "")


def test_deterministic_within_a_process() -> None:
    assert [split_for(s, f) for s, f in _composers(200)] == [
        split_for(s, f) for s, f in _composers(200)
    ]


def test_deterministic_across_processes() -> None:
    """No per-process hash seed: a fresh interpreter gives the same splits."""
    names = [("Chopin", "Frédéric"), ("Dvořák", "Antonín"), ("Bach", "Johann Sebastian")]
    code = (
        "from mta_pipeline.core.splits import split_for;"
        f"print(','.join(split_for(s, f) for s, f in {names!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout.strip()
    assert out.split(",") == [split_for(s, f) for s, f in names]


def test_bucket_is_the_documented_blake2b() -> None:
    """The docstring's formula, so other tools can recompute a composer's split."""
    for surname, firstname in [*_composers(300), ("Dvořák", "Antonín")]:
        key = unicodedata.normalize("NFC", f"{surname}|{firstname}").casefold()
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest, "big") % 100
        expected = "train" if bucket < 80 else "validation" if bucket < 90 else "test"
        assert split_for(surname, firstname) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            (unicodedata.normalize("NFD", "Dvořák"), unicodedata.normalize("NFD", "Antonín")),
            ("dvořák", "antonín"),
        ),
        (("DVOŘÁK", "ANTONÍN"), ("Dvořák", "Antonín")),
        (("Strauß", "Johann"), ("STRAUSS", "johann")),
        (("Chopin", "Frédéric"), ("chopin", unicodedata.normalize("NFD", "FRÉDÉRIC"))),
    ],
)
def test_composer_key_is_nfc_and_case_insensitive(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert composer_key(*a) == composer_key(*b)
    assert split_for(*a) == split_for(*b)


def test_surname_and_firstname_are_not_interchangeable() -> None:
    assert composer_key("Franck", "César") != composer_key("César", "Franck")


def test_shares_close_to_80_10_10() -> None:
    counts = Counter(split_for(s, f) for s, f in _composers())
    shares = {k: 100 * v / N_COMPOSERS for k, v in counts.items()}
    assert abs(shares["train"] - 80) <= 4, shares
    assert abs(shares["validation"] - 10) <= 4, shares
    assert abs(shares["test"] - 10) <= 4, shares


def test_records_of_one_composer_never_in_two_splits() -> None:
    # Many records per composer, spelled the ways the sources spell them.
    records = []
    for i, (surname, firstname) in enumerate(_composers(300)):
        for variant in (str.lower, str.upper, str.title, lambda s: s):
            records.append((f"surname{i:04d}", variant(surname), variant(firstname)))
    splits_by_composer: dict[str, set[str]] = {}
    for composer, surname, firstname in records:
        splits_by_composer.setdefault(composer, set()).add(split_for(surname, firstname))
    assert all(len(s) == 1 for s in splits_by_composer.values())
