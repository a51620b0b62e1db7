"""The queue sharded over a real 3-primary Redis Cluster, with the invariants intact.

A local cluster (``loadtest/redis_cluster.py``) for the module; the gateway runs in this
process against it (real TCP to the SMSC simulator, real PostgreSQL). The proof that the
queue shards: every node holds queue entries and served XADDs. Invariant 2: a FLUSHALL
of one node mid-flight loses that node's shards, the sweeper notices the missing epoch
and rebuilds from PostgreSQL, and every accepted message still ends delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import redis_client
from gateway.adapters.redis_queue import CLUSTER_SHARDS, RedisQueue
from gateway.core.ids import IdGenerator
from gateway.core.message import Priority
from gateway.embedded import ServerUrls
from loadtest.loadgen import messages
from loadtest.redis_cluster import LocalCluster, local_cluster
from loadtest.smsc import SmscConfig, SmscSimulator
from tests.e2e.conftest import Api, count, gateway_settings, serving_api, wait_for

WINDOW = 50  # gateway_settings' SMPP window: the most a crash or a flush may duplicate
DUPLICATES_SQL = """
SELECT count(*) FROM (SELECT message_id FROM message_parts GROUP BY message_id
                      HAVING count(*) > (SELECT parts FROM messages WHERE id = message_id)) d
"""
IDS = IdGenerator(node=901)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as started:
        yield started


@pytest.fixture
def empty_cluster(cluster: LocalCluster) -> LocalCluster:
    for port in cluster.ports:
        with cluster.client(port) as node:
            node.flushall()
            node.config_resetstat()
    return cluster


@pytest.fixture
async def queue(empty_cluster: LocalCluster) -> AsyncIterator[RedisQueue]:
    client = redis_client.connect(empty_cluster.url)
    yield RedisQueue(client, "smsgw", "dispatch")
    await client.aclose()


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    sim = SmscSimulator(SmscConfig(port=0, receipt_delay=0.05))
    await sim.start()
    yield sim
    await sim.stop()


def flush_node(cluster: LocalCluster, port: int) -> None:
    with cluster.client(port) as node:
        node.flushall()


async def test_the_queue_round_trips_over_every_node(queue: RedisQueue) -> None:
    assert queue.layout.shards == CLUSTER_SHARDS
    await queue.ensure_groups()
    assert await queue.claim_rebuild()
    items = [(IDS.next(), Priority(n % 3)) for n in range(600)]
    epochs = await queue.enqueue(items)
    assert set(epochs) == set(range(CLUSTER_SHARDS))
    assert await queue.still_there(epochs)
    assert sum((await queue.lengths()).values()) == 600
    read = await queue.read("c1", dict.fromkeys(Priority, 150), None)
    assert len(read) == 450  # never more than asked
    read += await queue.read("c1", dict.fromkeys(Priority, 150), None)
    assert sorted(e.message_id for e in read) == sorted(mid for mid, _ in items)
    await queue.ack(read)
    assert sum((await queue.lengths()).values()) == 0


async def test_a_blocking_wait_finds_an_entry_on_any_shard(queue: RedisQueue) -> None:
    await queue.ensure_groups()
    await queue.enqueue([(IDS.next(), Priority.OTP)])
    found = []
    for _ in range(CLUSTER_SHARDS):  # one shard per wait, in rotation
        found += await queue.wait("c1", {Priority.OTP: 10}, 1000)
    assert len(found) == 1


async def test_one_node_flushed_loses_its_epochs(
    queue: RedisQueue, empty_cluster: LocalCluster
) -> None:
    await queue.ensure_groups()
    assert await queue.claim_rebuild()
    epochs = await queue.enqueue([(IDS.next(), Priority.BULK) for _ in range(60)])
    flush_node(empty_cluster, empty_cluster.ports[1])
    assert not await queue.epoch_present()
    assert not await queue.still_there(epochs)
    assert await queue.claim_rebuild()
    assert not await queue.claim_rebuild()  # exactly one process rebuilds
    assert await queue.epoch_present()


async def test_shards_on_a_plain_redis_wait_in_one_call(redis: aioredis.Redis, clean: None) -> None:
    """Several shards need no cluster: one blocking read covers them all."""
    queue = RedisQueue(redis, "smsgw", "dispatch", 3)
    await queue.ensure_groups()
    assert await queue.claim_rebuild()
    items = [(IDS.next(), Priority.OTP) for _ in range(30)]
    epochs = await queue.enqueue(items)
    assert len(epochs) == 3
    found = await queue.wait("c1", {Priority.OTP: 30}, 1000)
    assert {e.shard for e in found} == {0, 1, 2}
    await redis.flushdb()
    assert not await queue.epoch_present()
    assert not await queue.still_there(epochs)


@pytest.mark.timeout(90)
async def test_gateway_on_a_cluster_shards_and_survives_a_node_flush(
    empty_cluster: LocalCluster,
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    smsc: SmscSimulator,
) -> None:
    urls = ServerUrls(server_urls.database_url, empty_cluster.url)
    smsc.update(resp_delay=0.1)  # 50 in flight / 0.1 s: a backlog builds in the streams
    async with serving_api(gateway_settings(smsc.port), urls, pool) as api:
        accepted = await send(api, 2000)
        stats = empty_cluster.node_stats()
        assert all(s.queue_entries > 0 and s.xadd_calls > 0 for s in stats), stats
        assert await queue_depth(api) > 0  # the scrape reads every node
        fullest = max(stats, key=lambda s: s.queue_entries)
        rebuilds = api.gateway.sweeper.rebuilds  # one at start: the epochs were missing
        flush_node(empty_cluster, fullest.port)  # mid-flight: its shards are lost
        smsc.update(resp_delay=0.0)
        await wait_for(lambda: all_final(pool, accepted), within=60)
        assert api.gateway.sweeper.rebuilds > rebuilds
    assert await count(pool, "SELECT count(*) FROM messages WHERE state <> 41") == 0
    assert await count(pool, DUPLICATES_SQL) <= WINDOW


async def send(api: Api, total: int, batch: int = 500) -> set[str]:
    accepted: set[str] = set()
    source = messages(total, seed=11)
    for _ in range(total // batch):
        chunk = [next(source) for _ in range(batch)]
        async with api.http.post("/v1/messages/batch", json={"messages": chunk}) as response:
            assert response.status == 202, await response.text()
            accepted |= {a["id"] for a in (await response.json())["accepted"]}
    assert len(accepted) == total
    return accepted


async def queue_depth(api: Api) -> float:
    """``smsgw_queue_depth`` summed over the priorities."""
    async with api.http.get("/metrics") as response:
        assert response.status == 200
        lines = (await response.text()).splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith("smsgw_queue_depth{"))


async def all_final(pool: aiopg.Pool, ids: set[str]) -> bool:
    sql = "SELECT count(*) FROM messages WHERE id = ANY(%s::bigint[]) AND state >= 40"
    return await count(pool, sql, [int(i) for i in ids]) == len(ids)
