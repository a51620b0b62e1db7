"""The queue's key names and shard choice (gateway/core/queue_layout.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from gateway.adapters.redis_client import cluster_url
from gateway.core.ids import EPOCH_MS, NODE_BITS, SEQ_BITS
from gateway.core.message import Priority
from gateway.core.queue_layout import QueueLayout
from loadtest.redis_cluster import slot_ranges


def test_one_shard_keeps_the_historical_keys() -> None:
    layout = QueueLayout("smsgw")
    assert layout.stream(0, Priority.OTP) == "smsgw:{q}:otp"
    assert layout.epoch(0) == "smsgw:{q}:epoch"
    assert layout.shard_of(123456789) == 0


def test_each_shard_has_its_own_tag_naming_the_shard_count() -> None:
    layout = QueueLayout("smsgw", 6)
    assert layout.stream(4, Priority.BULK) == "smsgw:{q4of6}:bulk"
    assert layout.epoch(4) == "smsgw:{q4of6}:epoch"
    assert len({layout.tag(s) for s in range(6)}) == 6
    assert layout.tag(0) != QueueLayout("smsgw", 3).tag(0)  # a new count: new keys


def test_a_layout_needs_a_shard() -> None:
    with pytest.raises(ValueError):
        QueueLayout("smsgw", 0)


@given(st.integers(1, 16), st.integers(0, 15), st.sampled_from(list(Priority)))
def test_a_stream_key_parses_back(shards: int, shard: int, priority: Priority) -> None:
    layout = QueueLayout("sms:gw", shards)  # a prefix with a colon in it
    shard %= shards
    assert layout.parse(layout.stream(shard, priority)) == (shard, priority)


@given(st.integers(1, 16), st.integers(0, 2**63 - 1))
def test_a_message_has_one_shard_in_range(shards: int, message_id: int) -> None:
    layout = QueueLayout("smsgw", shards)
    assert 0 <= layout.shard_of(message_id) < shards


@pytest.mark.parametrize("shards", [2, 3, 4, 6, 8])
def test_ids_made_at_a_low_rate_spread_over_every_shard(shards: int) -> None:
    """One id per millisecond ends in sequence 0: ``id % 6`` would only hit even shards."""
    node, start = 5, 1_800_000_000_000 - EPOCH_MS
    ids = [((start + ms) << (NODE_BITS + SEQ_BITS)) | (node << SEQ_BITS) for ms in range(6000)]
    layout = QueueLayout("smsgw", shards)
    counts = [0] * shards
    for message_id in ids:
        counts[layout.shard_of(message_id)] += 1
    assert min(counts) > len(ids) / shards * 0.8


@given(st.integers(1, 12), st.integers(0, 5000), st.integers(0, 100))
def test_a_read_splits_its_count_over_the_shards(shards: int, count: int, start: int) -> None:
    parts = QueueLayout("smsgw", shards).split(count, start)
    assert sum(share for _, share in parts) == count
    assert all(share > 0 for _, share in parts)
    assert len({shard for shard, _ in parts}) == len(parts)
    assert max((s for _, s in parts), default=0) - min((s for _, s in parts), default=0) <= 1


def test_slots_split_as_redis_cli_splits_them() -> None:
    assert slot_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]


def test_six_shards_fall_two_per_node_of_an_even_three_primary_cluster() -> None:
    """Why six is the cluster default: no node idles, none takes a double share."""
    layout, ranges = QueueLayout("smsgw", 6), slot_ranges(3)
    per_node = [0, 0, 0]
    for shard in range(6):
        slot = key_slot(layout.epoch(shard).encode())
        per_node[next(i for i, (lo, hi) in enumerate(ranges) if lo <= slot <= hi)] += 1
    assert per_node == [2, 2, 2]


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("redis+cluster://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
        ("rediss+cluster://:pw@node:7000", "rediss://:pw@node:7000"),
        ("redis://127.0.0.1:6379/14", None),
        ("unix:///run/redis.sock", None),
    ],
)
def test_a_cluster_is_asked_for_by_the_url_scheme(url: str, plain: str | None) -> None:
    assert cluster_url(url) == plain
