import hashlib
from collections import Counter

from mta_pipeline.partitions import (
    N_SHARDS,
    SHARD_KEYS,
    assign_shard,
    member_to_shard,
    shard_partitions,
    vid_to_shard,
)


def test_vid_to_shard_follows_the_documented_rule():
    """blake2b-64 of the UTF-8 id, big-endian, modulo 32: pinned so the hash never drifts."""
    for vid in ("dQw4w9WgXcQ", "-0123456789", "a_b_c_d_e_f"):
        digest = hashlib.blake2b(vid.encode(), digest_size=8).digest()
        assert vid_to_shard(vid) == f"{int.from_bytes(digest, 'big') % 32:02d}"
    assert (vid_to_shard("dQw4w9WgXcQ"), vid_to_shard("-0123456789")) == ("11", "20")


def test_shards_are_the_partition_keys_and_spread_evenly():
    assert shard_partitions.get_partition_keys() == list(SHARD_KEYS)
    assert len(SHARD_KEYS) == N_SHARDS == 32
    counts = Counter(vid_to_shard(f"{i:011d}") for i in range(32_000))
    assert set(counts) == set(SHARD_KEYS)
    assert max(counts.values()) < 1.2 * 1000 and min(counts.values()) > 0.8 * 1000


def test_assign_shard_uses_the_id_when_the_name_has_one():
    member = "midis/Bach, Johann Sebastian, Prelude in C major, dQw4w9WgXcQ.mid"
    assert assign_shard(member) == vid_to_shard("dQw4w9WgXcQ")
    assert assign_shard("midis/README.txt") == member_to_shard("midis/README.txt")
