"""Campaign progress for Prometheus: ``smsgw_campaign_messages{campaign,status}``.

Only campaigns that are running or paused carry a label (bounded cardinality): every
``interval`` the messages of their current run are counted by status (an index-only scan
on ``campaign_messages (campaign_id, status)``) and set in Redis, where every gateway
process's ``/metrics`` reads them; a campaign that has ended is cleared.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from admin.adapters.campaign_store import progress
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.pg import fetch
from gateway.metrics import clear_campaign, set_campaign
from gateway.metrics.gauges import read_campaigns

if TYPE_CHECKING:
    from admin.app import Admin

log = logging.getLogger("admin.metrics")
ACTIVE_SQL = "SELECT id, run_id FROM admin.campaigns WHERE state IN ('running', 'paused')"


async def run(admin: Admin, interval: float = 10.0) -> None:
    prefix = admin.gateway_settings.queue.prefix
    # What an earlier process left is cleared too, once its campaign has ended.
    shown = {campaign for campaign, _ in await read_campaigns(admin.redis, prefix)}
    while True:
        try:
            shown = await publish(admin, shown)
        except TRANSIENT as exc:
            raise_if_cancelling()
            log.warning("campaign metrics not updated: %r", exc)
        await asyncio.sleep(interval)


async def publish(admin: Admin, shown: set[str]) -> set[str]:
    """Set the gauges of the active campaigns, clear those that ended; returns the shown."""
    prefix = admin.gateway_settings.queue.prefix
    active = {str(cid): int(run) for cid, run in await fetch(admin.pool, ACTIVE_SQL)}
    for campaign, run_id in active.items():
        counts = await progress(admin.pool, int(campaign), run_id)
        await set_campaign(admin.redis, prefix, campaign, counts)
    for campaign in shown - active.keys():
        await clear_campaign(admin.redis, prefix, campaign)
    return set(active)
