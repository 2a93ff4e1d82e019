from datetime import UTC, date, datetime

import pytest

from mta_pipeline.core.quota import (
    batch_that_fits,
    next_reset,
    pacific_day,
    remaining_units,
    reset_message,
    videos_list_calls,
    worst_case_units,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_pacific_day_changes_at_pacific_midnight_not_utc():
    assert pacific_day(utc(2026, 11, 25, 7, 59)) == date(2026, 11, 24)  # PST is UTC-8
    assert pacific_day(utc(2026, 11, 25, 8, 0)) == date(2026, 11, 25)
    assert pacific_day(utc(2026, 7, 1, 6, 59)) == date(2026, 6, 30)  # PDT is UTC-7


def test_next_reset_in_winter_and_summer():
    assert next_reset(utc(2026, 11, 25, 12, 0)) == utc(2026, 11, 26, 8, 0)
    assert next_reset(utc(2026, 7, 1, 12, 0)) == utc(2026, 7, 2, 7, 0)
    msg = reset_message(utc(2026, 11, 25, 12, 0))
    assert "2026-11-26 00:00 Pacific" in msg and "08:00 UTC" in msg and "20 h 00 min" in msg


def test_next_reset_across_the_dst_change():
    # 2026-11-01 is the autumn change: Pacific midnight of 2 Nov is 08:00 UTC.
    assert next_reset(utc(2026, 11, 1, 12, 0)) == utc(2026, 11, 2, 8, 0)


@pytest.mark.parametrize(("n", "calls"), [(0, 0), (1, 1), (50, 1), (51, 2), (10_855, 218)])
def test_videos_list_calls(n, calls):
    assert videos_list_calls(n) == calls


def test_full_corpus_needs_more_than_a_day():
    assert worst_case_units(10_855) == 218 + 10_855 > 10_000


@pytest.mark.parametrize(
    ("remaining", "pending", "batch"),
    [
        (10_000, 340, 50),
        (51, 340, 50),
        (50, 340, 49),
        (2, 340, 1),
        (1, 340, 0),
        (0, 5, 0),
        (100, 7, 7),
    ],
)
def test_batch_that_fits_pays_for_its_comment_calls(remaining, pending, batch):
    assert batch_that_fits(remaining, pending) == batch
    assert batch == 0 or 1 + batch <= remaining


def test_remaining_never_negative():
    assert remaining_units(10_000, 10_300) == 0 and remaining_units(10_000, 300) == 9_700
