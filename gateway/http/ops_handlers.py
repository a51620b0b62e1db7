"""Operations endpoints: live provider pool state, summed over every dispatch process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway import metrics
from gateway.adapters import pool_state
from gateway.adapters.otp_store import PumpingCounters
from gateway.http.handlers import authenticated
from gateway.http.keys import GATEWAY
from gateway.metrics import gauges, recorder

if TYPE_CHECKING:
    from gateway.app import Gateway


async def get_providers(request: web.Request) -> web.Response:
    await authenticated(request)
    gateway = request.app[GATEWAY]
    state = await pool_state.read(gateway.redis, gateway.settings.queue.prefix)
    configured = [p.name for p in gateway.settings.providers]
    providers = [state.get(name) or {"name": name, "ready": False} for name in configured]
    return web.json_response({"providers": providers})


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text format; unauthenticated, like every scrape target (bind it to a
    private interface or put it behind the proxy's access rules)."""
    gateway = request.app[GATEWAY]
    redis, prefix = gateway.redis, gateway.settings.queue.prefix
    live = await pool_state.read(redis, prefix)
    blocked = await PumpingCounters(redis, prefix).blocked()
    totals = await recorder.read(redis, prefix)
    body = metrics.render(
        [
            metrics.PoolCollector(live),
            metrics.OtpCollector(blocked),
            metrics.TotalsCollector(totals),
            metrics.GaugesCollector(await _readings(gateway)),
        ]
    )
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def _readings(gateway: Gateway) -> metrics.Readings:
    prefix = gateway.settings.queue.prefix
    streams = {p.label: keys for p, keys in gateway.queue.stream_keys.items()}
    backlog, oldest = await gauges.read_backlog(gateway.pool)
    return metrics.Readings(
        await gauges.read_streams(gateway.redis, streams),
        backlog,
        oldest,
        await gauges.read_campaigns(gateway.redis, prefix),
        await gauges.read_sweep_lag(gateway.pool),
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/v1/providers", get_providers), web.get("/metrics", get_metrics)]
