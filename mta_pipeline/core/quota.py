"""YouTube Data API quota arithmetic: Pacific-time days, costs, and what a budget can pay for.

The daily quota resets at midnight US Pacific time, so the ledger is keyed by the Pacific date.
Every call costs one unit (videos.list of up to 50 ids, commentThreads.list), failed calls too,
except a call the API refuses with `quotaExceeded` (or `dailyLimitExceeded`): it is refused
because the day's quota is already spent, so it charges nothing (the emulator counts it so).
Such a refusal is recorded in the ledger with 0 units and ends the day: no step of any shard
or process calls again before the Pacific midnight, whatever the units say is left.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
VIDEOS_PER_CALL = 50
UNIT_COST = 1
# The machine reasons of an answer that means "the day's quota is spent".
QUOTA_REFUSALS = frozenset({"quotaExceeded", "dailyLimitExceeded"})


def units_charged(outcome: str) -> int:
    """Units a call with this outcome (`ok` or the machine reason of its failure) costs."""
    return 0 if outcome in QUOTA_REFUSALS else UNIT_COST


def pacific_day(now: datetime) -> date:
    """The quota day (Pacific date) that `now` (timezone-aware) falls in."""
    return now.astimezone(PACIFIC).date()


def next_reset(now: datetime) -> datetime:
    """When the quota next resets: the coming Pacific midnight, as an aware UTC datetime."""
    tomorrow = pacific_day(now) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=PACIFIC).astimezone(UTC)


def reset_message(now: datetime) -> str:
    reset = next_reset(now)
    local = reset.astimezone(PACIFIC)
    return (
        f"the quota resets at {local:%Y-%m-%d %H:%M} Pacific time "
        f"({reset:%Y-%m-%d %H:%M} UTC, in {_hours(reset - now)})"
    )


def _hours(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min"


def videos_list_calls(n_videos: int) -> int:
    return math.ceil(n_videos / VIDEOS_PER_CALL)


def worst_case_units(n_videos: int) -> int:
    """Units to scrape `n_videos` whatever their comment counts: the list calls plus one comment
    call per video."""
    return videos_list_calls(n_videos) + n_videos


def batch_that_fits(remaining: int, pending: int) -> int:
    """How many pending videos the next videos.list batch may take so that the batch and every
    comment call it can lead to are paid for: 1 + b <= remaining, b <= 50."""
    return max(0, min(VIDEOS_PER_CALL, pending, remaining - UNIT_COST))


def remaining_units(daily_quota: int, spent_today: int, refused_today: bool = False) -> int:
    """Units left today: none once the API has refused a call for quota, else the quota less
    what the ledger records."""
    return 0 if refused_today else max(0, daily_quota - spent_today)
