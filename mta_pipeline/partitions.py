"""Static hash shards over YouTube ids.

32 shards: about 340 videos each at GiantMIDI's full size (10,855). That keeps a shard's YouTube
scrape (about 7 `videos.list` units plus one comment call per video) small enough that a day's
default quota of 10,000 units finishes many shards, makes a rerun after a change touch ~3% of the
corpus, and leaves enough partitions to keep a 2-core machine busy without flooding the UI or the
run queue. The set is fixed: changing it would move every video to another shard.
"""

from __future__ import annotations

import hashlib
import unicodedata

import dagster as dg

from mta_pipeline.core.archive import try_parse

N_SHARDS = 32
SHARD_KEYS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(N_SHARDS))

shard_partitions = dg.StaticPartitionsDefinition(list(SHARD_KEYS))


def _stable_shard(text: str) -> str:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return SHARD_KEYS[int.from_bytes(digest, "big") % N_SHARDS]


def vid_to_shard(vid: str) -> str:
    """The shard key of a YouTube id: stable across processes, machines and Python versions."""
    return _stable_shard(vid)


def member_to_shard(member: str) -> str:
    """The shard of an archive member whose name yields no YouTube id (so it is reported once)."""
    return _stable_shard(unicodedata.normalize("NFC", member))


def assign_shard(member: str) -> str:
    """The shard that owns an archive member: its id's shard, else its name's."""
    parsed = try_parse(member)
    return vid_to_shard(parsed.vid) if parsed else member_to_shard(member)
