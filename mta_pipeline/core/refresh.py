"""Which shards the daily YouTube refresh takes: pending work first, then the stalest scrapes,
as many as the day's remaining quota pays for in the worst case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mta_pipeline.core.quota import worst_case_units


@dataclass(frozen=True)
class ShardScrape:
    shard: str
    videos: int
    due: int  # never scraped, pending, failed, or older than the refresh period
    pending: int  # never scraped, pending or failed
    oldest: datetime | None  # the shard's oldest scrape; None when never scraped

    @property
    def cost(self) -> int:
        return worst_case_units(self.due)


def pick_shards(shards: list[ShardScrape], budget: int) -> list[ShardScrape]:
    """Shards with due videos, pending ones first, then stalest first, while the budget lasts.

    A shard that does not fit is skipped (a smaller one later in the order may still fit).
    """
    due = [s for s in shards if s.due > 0]
    due.sort(
        key=lambda s: (s.pending == 0, s.oldest is not None, s.oldest or datetime.min, s.shard)
    )
    picked = []
    for shard in due:
        if shard.cost <= budget:
            picked.append(shard)
            budget -= shard.cost
    return picked
