"""``POST /v1/conversions`` over HTTP: token, idempotency, attribution, errors by index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import aiopg

from admin.adapters import user_store
from admin.core.roles import Role
from gateway.adapters import pg
from tests.admin.conftest import AdminApp

PHONE = "+79161230002"


async def seed(pool: aiopg.Pool, sent_ago: timedelta, status: str = "delivered") -> tuple[int, int]:
    """A contact with one campaign message sent ``sent_ago``; returns (contact, campaign)."""
    [(contact,)] = await pg.fetch(
        pool, "INSERT INTO admin.contacts (phone) VALUES (%s) RETURNING id", (PHONE,)
    )
    [(campaign,)] = await pg.fetch(
        pool,
        "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule) "
        "VALUES ('sale', 1, 'Shop', '[]', '{}') RETURNING id",
    )
    await pg.execute(
        pool,
        "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, "
        "variant, status, accepted_at, submitted_at) VALUES (77, %s, 1, %s, 'B', %s, %s, %s)",
        (campaign, contact, status, datetime.now(UTC) - sent_ago, datetime.now(UTC) - sent_ago),
    )
    return contact, campaign


async def client(app: AdminApp) -> aiohttp.ClientSession:
    token = await user_store.create_token(app.admin.pool, "crm")
    http = aiohttp.ClientSession(app.url, headers={"Authorization": f"Bearer {token}"})
    app.sessions.append(http)
    return http


async def test_a_conversion_is_attributed_and_stored_once(admin_app: AdminApp) -> None:
    contact, campaign = await seed(admin_app.admin.pool, timedelta(hours=5))
    http = await client(admin_app)
    body = {"phone": "8 916 123-00-02", "event": "purchase", "value": 990, "external_id": "o-1"}
    async with http.post("/v1/conversions", json=body) as reply:
        assert reply.status == 201, await reply.text()
        first = await reply.json()
    assert first["campaign_id"] == campaign and first["duplicate"] is False
    async with http.post("/v1/conversions", json=body | {"value": 5}) as reply:
        assert reply.status == 200
        assert (await reply.json()) == first | {"duplicate": True}
    rows = await pg.fetch(
        admin_app.admin.pool,
        "SELECT contact_id, campaign_id, message_id, variant, value, source FROM admin.conversions",
    )
    assert rows == [(contact, campaign, 77, "B", Decimal("990.0000"), "crm")]
    audited = await pg.fetch(
        admin_app.admin.pool,
        "SELECT action, detail FROM admin.audit WHERE actor = 'token:crm' ORDER BY id",
    )
    (action, detail), _ = audited
    assert action == "conversions.post" and detail == {"stored": 1, "refused": 0}


async def test_outside_the_window_nothing_is_attributed(admin_app: AdminApp) -> None:
    contact, _ = await seed(admin_app.admin.pool, timedelta(hours=80))
    http = await client(admin_app)
    body = {"contact_id": contact, "event": "signup", "external_id": "s-1"}
    async with http.post("/v1/conversions", json=body) as reply:
        assert reply.status == 201
        assert (await reply.json())["campaign_id"] is None


async def test_a_list_reports_errors_by_index_and_field(admin_app: AdminApp) -> None:
    contact, campaign = await seed(admin_app.admin.pool, timedelta(minutes=5), "submitted")
    http = await client(admin_app)
    items = [
        {"contact_id": contact, "event": "purchase", "external_id": "a"},
        {"contact_id": contact, "event": "purchase"},
        {"phone": "+79161239999", "event": "purchase", "external_id": "b"},
        {"contact_id": contact, "event": "purchase", "external_id": "c", "currency": "rubles"},
        {"contact_id": 10**9, "event": "purchase", "external_id": "d"},
    ]
    async with http.post("/v1/conversions", json=items) as reply:
        assert reply.status == 200
        found = await reply.json()
    assert [(a["index"], a["campaign_id"]) for a in found["accepted"]] == [(0, campaign)]
    assert [(r["index"], r["field"], r["code"]) for r in found["rejected"]] == [
        (1, "external_id", "invalid"),
        (2, "phone", "unknown_contact"),
        (3, "currency", "invalid"),
        (4, "contact_id", "unknown_contact"),
    ]


async def test_refusals(admin_app: AdminApp) -> None:
    anonymous = await admin_app.anonymous()
    body = {"contact_id": 1, "event": "e", "external_id": "x"}
    async with anonymous.post("/v1/conversions", json=body) as reply:
        assert reply.status == 401
    http = await client(admin_app)
    for payload, field in (([], "conversions"), ({"event": "e", "external_id": "x"}, "phone")):
        async with http.post("/v1/conversions", json=payload) as reply:
            assert reply.status == 422
            assert (await reply.json())["error"]["field"] == field
    async with http.post(
        "/v1/conversions", data=b"{nope", headers={"Content-Type": "application/json"}
    ) as reply:
        assert reply.status == 400 and (await reply.json())["error"]["field"] == "body"
    marketer = await admin_app.client(Role.marketer)
    async with marketer.post("/v1/conversions", json=body) as reply:
        assert reply.status == 401  # a session is not a token
