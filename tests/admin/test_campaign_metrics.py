"""Campaign progress reaches the gateway's /metrics families through Redis, and leaves."""

from __future__ import annotations

import aiopg
import redis.asyncio as aioredis

from admin.services import campaign_metrics
from gateway.adapters.pg import execute
from gateway.metrics.gauges import read_campaigns
from tests.admin.conftest import AdminApp

CAMPAIGN = (
    "INSERT INTO admin.campaigns (name, state, audience_id, sender, variants, schedule, run_id) "
    "VALUES ('c', %s, 1, 'Shop', '[]', '{}', 1) RETURNING id"
)
MESSAGES = (
    "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, variant, "
    "status) SELECT g, %s, 1, g, 'A', CASE WHEN g %% 2 = 0 THEN 'delivered' ELSE 'submitted' END "
    "FROM generate_series(1, 5) g"
)


async def test_running_campaign_is_shown_then_cleared(
    admin_app: AdminApp, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    async with admin_db.acquire() as conn, conn.cursor() as cur:
        await cur.execute(CAMPAIGN, ("running",))
        [campaign] = await cur.fetchone()
    await execute(admin_db, MESSAGES, (campaign,))
    shown = await campaign_metrics.publish(admin_app.admin, set())
    prefix = admin_app.admin.gateway_settings.queue.prefix
    assert await read_campaigns(redis, prefix) == {
        (str(campaign), "delivered"): 2.0,
        (str(campaign), "submitted"): 3.0,
    }
    await execute(admin_db, "UPDATE admin.campaigns SET state = 'finished'")
    assert await campaign_metrics.publish(admin_app.admin, shown) == set()
    assert await read_campaigns(redis, prefix) == {}
