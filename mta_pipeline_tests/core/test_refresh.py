from datetime import UTC, datetime

from mta_pipeline.core.refresh import ShardScrape, pick_shards


def at(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


def test_pending_first_then_stalest_while_the_budget_lasts():
    shards = [
        ShardScrape("00", videos=300, due=300, pending=0, oldest=at(1)),
        ShardScrape("01", videos=300, due=0, pending=0, oldest=at(20)),
        ShardScrape("02", videos=300, due=10, pending=10, oldest=at(15)),
        ShardScrape("03", videos=300, due=300, pending=300, oldest=None),
        ShardScrape("04", videos=300, due=300, pending=0, oldest=at(3)),
    ]
    # costs: 300 due -> 6 + 300 = 306 units; 10 due -> 11 units
    assert [s.shard for s in pick_shards(shards, 10_000)] == ["03", "02", "00", "04"]
    assert [s.shard for s in pick_shards(shards, 320)] == ["03", "02"]
    assert [s.shard for s in pick_shards(shards, 20)] == ["02"]  # a smaller shard still fits
    assert pick_shards(shards, 5) == []
