"""Campaign pages and API on a running admin: roles, validation, dry run, actions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import aiopg

from admin.adapters import audience_store, template_store
from admin.adapters.template_store import TemplateDraft
from admin.core.audience import parse_query
from admin.core.roles import Role
from gateway.adapters import pg
from tests.admin.conftest import AdminApp


async def _parts(pool: aiopg.Pool) -> tuple[int, int, int]:
    await pg.execute(
        pool,
        "INSERT INTO admin.contacts (phone, first_name, timezone, subscribed, consent, tags) "
        "SELECT '+7916' || lpad(i::text, 7, '0'), 'Имя', 'Asia/Omsk', i %% 4 <> 0, true, "
        "'{vip}' FROM generate_series(1, 40) i",
    )
    query = parse_query({"rules": [{"field": "tags", "op": "any", "value": ["vip"]}]})
    audience = await audience_store.create_audience(pool, "vip", query, None)
    short = await template_store.create_template(
        pool, TemplateDraft("a", "Hi {first_name}", {}), None
    )
    long = await template_store.create_template(
        pool, TemplateDraft("b", "Здравствуйте, {first_name}! " * 4, {}), None
    )
    return audience, short, long


def _spec(audience: int, a: int, b: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Осень",
        "audience_id": audience,
        "sender": "Shop",
        "variants": [{"template_id": a, "percent": 50}, {"template_id": b, "percent": "50"}],
        "schedule": {"kind": "once", "at": "2020-01-01T09:00:00+03:00"},
        "window": {"start": "09:00", "end": "21:00"},
        "rate_per_s": 50,
        "frequency_cap": {"messages": 2, "period_hours": 168},
        **extra,
    }


async def _post(http: aiohttp.ClientSession, url: str, body: Any = None) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": http.csrf}  # type: ignore[attr-defined]
    async with http.post(url, json=body, headers=headers) as reply:
        return reply.status, await reply.json()


async def test_a_marketer_creates_dry_runs_and_starts(admin_app: AdminApp) -> None:
    pool = admin_app.admin.pool
    audience, a, b = await _parts(pool)
    http = await admin_app.client(Role.marketer)
    status, dry = await _post(http, "/api/campaigns/dry-run", _spec(audience, a, b))
    assert status == 200, dry
    assert (dry["audience"], dry["eligible"], dry["excluded"]) == (40, 30, 10)
    assert [(v["contacts"], v["parts_each"]) for v in dry["variants"]] == [(15, 1), (15, 2)]
    assert dry["parts"] == 45 and dry["zones"] == ["Asia/Omsk"]
    assert dry["cost"] is None or Decimal(dry["cost"]) >= 0
    status, created = await _post(http, "/api/campaigns", _spec(audience, a, b))
    assert status == 201
    cid = created["id"]
    pages = {
        "/campaigns": f'id="campaign-row-{cid}"',
        f"/campaigns/{cid}": 'id="progress-bar"',
        f"/campaigns/{cid}/edit": f'data-id="{cid}"',
        "/campaigns/new": 'id="dry-run"',
    }
    for page, marker in pages.items():
        async with http.get(page) as reply:
            assert reply.status == 200, page
            assert marker in await reply.text(), page
    assert (await _post(http, f"/api/campaigns/{cid}/start"))[1]["state"] == "scheduled"
    status, refused = await _post(http, f"/api/campaigns/{cid}/resume")
    assert (status, refused["error"]["field"]) == (409, "state")
    csrf = {"X-CSRF-Token": http.csrf}  # type: ignore[attr-defined]
    async with http.put(f"/api/campaigns/{cid}", json=_spec(audience, a, b), headers=csrf) as r:
        assert r.status == 409
    async with http.get(f"/api/campaigns/{cid}/progress") as reply:
        progress = await reply.json()
    assert progress["state"] == "scheduled"
    assert set(progress["actions"]) == {"unschedule", "cancel"}
    assert (await _post(http, f"/api/campaigns/{cid}/cancel"))[1]["state"] == "cancelled"


async def test_bad_specs_name_the_field(admin_app: AdminApp) -> None:
    audience, a, b = await _parts(admin_app.admin.pool)
    http = await admin_app.client(Role.marketer)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"sender": "x" * 12}, "sender"),
        ({"rate_per_s": 0}, "rate_per_s"),
        ({"variants": [{"template_id": a, "percent": 60}]}, "variants[0].percent"),
        ({"schedule": {"kind": "once", "at": "tomorrow"}}, "schedule.at"),
        ({"window": {"start": "25:00", "end": "21:00"}}, "window.start"),
        ({"frequency_cap": {"messages": 1}}, "frequency_cap.period_hours"),
    ]
    for extra, field in cases:
        status, body = await _post(http, "/api/campaigns", _spec(audience, a, b, **extra))
        assert (status, body["error"]["field"]) == (422, field), extra
    status, body = await _post(http, "/api/campaigns/dry-run", _spec(10**9, a, b))
    assert (status, body["error"]["field"]) == (422, "audience_id")
    status, body = await _post(http, "/api/campaigns", [1, 2])
    assert (status, body["error"]["field"]) == (422, "body")


async def test_an_analyst_reads_but_may_not_write(admin_app: AdminApp) -> None:
    audience, a, b = await _parts(admin_app.admin.pool)
    marketer = await admin_app.client(Role.marketer)
    cid = (await _post(marketer, "/api/campaigns", _spec(audience, a, b)))[1]["id"]
    analyst = await admin_app.client(Role.analyst)
    async with analyst.get(f"/api/campaigns/{cid}/progress") as reply:
        assert reply.status == 200
    async with analyst.get(f"/campaigns/{cid}") as reply:
        assert reply.status == 200 and 'id="action-start"' not in await reply.text()
    status, body = await _post(analyst, f"/api/campaigns/{cid}/start")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await _post(analyst, "/api/campaigns", _spec(audience, a, b))
    assert status == 403
    sre = await admin_app.client(Role.sre)
    async with sre.get("/api/campaigns") as reply:
        assert reply.status == 403


async def test_unknown_ids_and_actions_are_404(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.marketer)
    async with http.get("/api/campaigns/99999999999999999999999/progress") as reply:
        assert reply.status == 404
    assert (await _post(http, "/api/campaigns/5/start"))[0] == 404
    assert (await _post(http, "/api/campaigns/5/explode"))[0] == 404
