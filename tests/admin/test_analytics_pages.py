"""Analytics counted in the database and shown to analysts (not to marketers)."""

from __future__ import annotations

from decimal import Decimal

from admin.adapters import analytics_store as store
from admin.core.roles import Role
from tests.admin.analytics_seed import T0, seed_campaign
from tests.admin.conftest import AdminApp


async def test_counts_of_a_campaign_and_its_variants(admin_app: AdminApp) -> None:
    pool = admin_app.admin.pool
    seeded = await seed_campaign(pool)
    total = await store.campaign_counts(pool, seeded.campaign_id)
    assert (total.sent, total.delivered, total.failed, total.expired, total.pending) == (
        40, 28, 10, 2, 0,
    )  # fmt: skip
    assert total.cost == Decimal("45.000000")
    assert (total.clicks_unique, total.clicks_total, total.replies, total.opt_outs) == (2, 4, 1, 1)
    assert (total.conversions, total.conversion_value) == (1, Decimal("2500.0000"))
    assert (total.p50_s, total.p95_s) == (5.0, 20.0)
    variants = await store.by_variant(pool, seeded.campaign_id)
    assert {k: (v.sent, v.delivered, v.clicks_unique) for k, v in variants.items()} == {
        "A": (20, 20, 0),
        "B": (20, 8, 2),
    }


async def test_segments_timeline_and_cost(admin_app: AdminApp) -> None:
    pool = admin_app.admin.pool
    seeded = await seed_campaign(pool)
    regions = await store.by_segment(pool, seeded.campaign_id, "region")
    assert {k: v.sent for k, v in regions.items()} == {"MOW": 14, "SPE": 13, None: 13}
    ages = await store.by_segment(pool, seeded.campaign_id, "age_band")
    assert sum(v.sent for v in ages.values()) == 40 and "65+" in ages
    rows = await store.timeline(pool, seeded.campaign_id, "minute")
    assert (T0, "sent", 1) in rows and sum(n for _, k, n in rows if k == "delivered") == 28
    costs = await store.cost_by_provider(pool, seeded.campaign_id)
    assert costs == [
        ("smsc-b", Decimal("30.000000"), 20),
        ("smsc-a", Decimal("15.000000"), 10),
        ("(not sent)", Decimal(0), 10),
    ]


async def test_the_analyst_sees_the_overview_and_the_report(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool)
    http = await admin_app.client(Role.analyst)
    async with http.get("/analytics") as reply:
        assert reply.status == 200
        page = await reply.text()
    assert "Black Friday" in page and "70.0%" in page and "<svg" in page
    async with http.get(f"/analytics/campaigns/{seeded.campaign_id}?segment=gender") as reply:
        assert reply.status == 200
        page = await reply.text()
    for part in ("Delivery over time", "Funnel", "Cost by provider", "A/B comparison", "Gender"):
        assert part in page
    assert 'id="ab-tests"' in page and "B vs A" in page and "too few messages" in page
    assert page.count("<svg") == 3 and "+7916" not in page


async def test_the_report_as_json(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool)
    http = await admin_app.client(Role.admin)
    async with http.get(f"/api/analytics/campaigns/{seeded.campaign_id}") as reply:
        assert reply.status == 200
        body = await reply.json()
    assert body["counts"]["delivered"] == 28 and body["counts"]["delivery_rate"] == 0.7
    [test] = body["ab_tests"]
    assert test["variant"] == "B" and test["delivery"]["difference"] == -0.6
    assert test["delivery"]["winner"] is None  # 20 per variant: under the minimum sample
    async with http.get(f"/api/analytics/campaigns/{seeded.campaign_id}?segment=x") as reply:
        assert reply.status == 422 and (await reply.json())["error"]["field"] == "segment"
    async with http.get("/api/analytics/campaigns/99999") as reply:
        assert reply.status == 404


async def test_a_marketer_is_refused(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool)
    http = await admin_app.client(Role.marketer)
    async with http.get("/analytics") as reply:
        assert reply.status == 403
    async with http.get(f"/api/analytics/campaigns/{seeded.campaign_id}") as reply:
        assert reply.status == 403
        assert (await reply.json())["error"]["code"] == "forbidden"
