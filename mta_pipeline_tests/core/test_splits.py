"""Tests for composer splits: disjoint, balanced by records, stable across releases."""

from __future__ import annotations

import random
import unicodedata

import pytest

from mta_pipeline.core.splits import SPLITS, assign_splits, composer_key, record_shares


def _zipf_counts(n: int, total: int, seed: int = 0) -> dict[str, int]:
    """Records per composer with a heavy head, like GiantMIDI (a few hundred for Liszt…)."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** 1.1 for i in range(n)]
    counts = dict.fromkeys((f"c{i:04d}" for i in range(n)), 1)
    for key in rng.choices(list(counts), weights, k=total - n):
        counts[key] += 1
    return counts


@pytest.mark.parametrize(("composers", "records"), [(40, 200), (2_786, 10_855)])
def test_record_shares_are_within_two_points_of_80_10_10(composers: int, records: int) -> None:
    counts = _zipf_counts(composers, records)
    assert max(counts.values()) / records > 0.05  # a real head: hashing would swing far
    shares = record_shares(counts, assign_splits(counts, {}))
    assert abs(shares["train"] - 0.8) <= 0.02, shares
    assert abs(shares["validation"] - 0.1) <= 0.02, shares
    assert abs(shares["test"] - 0.1) <= 0.02, shares


def test_known_composers_keep_their_split_and_new_ones_fill_the_gap() -> None:
    counts = _zipf_counts(300, 3_000)
    first = assign_splits(counts, {})
    grown = {**counts, **{f"new{i}": 3 for i in range(60)}}
    second = assign_splits(grown, first)
    assert all(second[k] == first[k] for k in first)
    shares = record_shares(grown, second)
    assert abs(shares["train"] - 0.8) <= 0.02, shares


def test_new_composers_go_to_the_split_furthest_below_target() -> None:
    known = {"a": "train", "b": "train"}
    counts = {"a": 5, "b": 5, "x": 1}
    assert assign_splits(counts, known)["x"] == "validation"  # tie with test: validation first
    counts = {"a": 5, "b": 5, "x": 1, "y": 1}
    assert assign_splits(counts, known) == {
        "a": "train",
        "b": "train",
        "x": "validation",
        "y": "test",
    }


def test_a_composer_that_left_keeps_its_split() -> None:
    assert assign_splits({"a": 3}, {"a": "test", "gone": "validation"})["gone"] == "validation"


def test_assignment_is_deterministic_and_uses_only_the_three_splits() -> None:
    counts = _zipf_counts(500, 4_000, seed=3)
    assert assign_splits(counts, {}) == assign_splits(dict(reversed(counts.items())), {})
    assert set(assign_splits(counts, {}).values()) == set(SPLITS)


def test_a_stored_split_outside_the_three_is_refused() -> None:
    with pytest.raises(ValueError, match="dev"):
        assign_splits({"a": 1}, {"a": "dev"})


def test_empty_corpus() -> None:
    assert assign_splits({}, {}) == {}
    assert record_shares({}, {}) == dict.fromkeys(SPLITS, 0.0)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            (unicodedata.normalize("NFD", "Dvořák"), unicodedata.normalize("NFD", "Antonín")),
            ("dvořák", "antonín"),
        ),
        (("DVOŘÁK", "ANTONÍN"), ("Dvořák", "Antonín")),
        (("Strauß", "Johann"), ("STRAUSS", "johann")),
        (("Bach", None), ("Bach", "")),
    ],
)
def test_composer_key_is_nfc_and_case_insensitive(a: tuple, b: tuple) -> None:
    assert composer_key(*a) == composer_key(*b)


def test_surname_and_firstname_are_not_interchangeable() -> None:
    assert composer_key("Franck", "César") != composer_key("César", "Franck")
