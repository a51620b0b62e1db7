"""Exports: CSV and Parquet of results and messages, masked unless the role may and asks,
audited, written chunk by chunk."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq

from admin.adapters import export_store
from admin.core.roles import Role
from admin.services.export import MESSAGES, RESULTS, Format, csv_bytes, write_export
from gateway.adapters import pg
from tests.admin.analytics_seed import T0, phone, seed_campaign
from tests.admin.conftest import AdminApp


async def download(http: Any, path: str) -> tuple[int, bytes, str]:
    async with http.get(path) as reply:
        return reply.status, await reply.read(), reply.headers.get("Content-Disposition", "")


async def audited(app: AdminApp) -> list[tuple[Any, ...]]:
    return await pg.fetch(
        app.admin.pool,
        "SELECT action, target, detail FROM admin.audit WHERE action LIKE 'export%%'",
    )


async def test_messages_as_csv_masked_for_an_analyst(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool, contacts=12)
    http = await admin_app.client(Role.analyst)
    path = f"/api/exports/campaigns/{seeded.campaign_id}/messages.csv"
    status, body, disposition = await download(http, path)
    assert status == 200 and "attachment" in disposition
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 12 and rows[0]["message_id"] == "1000"
    assert rows[0]["phone"] == "+79*******00" and phone(0) not in body.decode()
    assert rows[0]["accepted_at"] == T0.isoformat() and rows[3]["error_code"] == "no_route"
    assert [r["clicks"] for r in rows if r["clicks"] != "0"] == []  # clicks from n=21 on
    status, _, _ = await download(http, path + "?phones=full")
    assert status == 403
    assert await audited(admin_app) == [
        ("export.campaign_messages", f"campaign:{seeded.campaign_id}",
         {"format": "csv", "phones": "masked"}),
    ]  # fmt: skip


async def test_messages_as_parquet_with_full_phones_for_an_admin(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool, contacts=24)
    http = await admin_app.client(Role.admin)
    path = f"/api/exports/campaigns/{seeded.campaign_id}/messages.parquet?phones=full"
    status, body, _ = await download(http, path)
    assert status == 200
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == 24 and table.schema == MESSAGES.schema
    data = table.to_pylist()
    assert data[0]["phone"] == phone(0) and data[0]["price"] == Decimal("1.5")
    assert data[21]["clicks"] == 2 and data[0]["accepted_at"] == T0
    [(_, _, detail)] = await audited(admin_app)
    assert detail == {"format": "parquet", "phones": "full"}


async def test_results_of_every_campaign(admin_app: AdminApp) -> None:
    await seed_campaign(admin_app.admin.pool, contacts=8, name="=HYPERLINK(evil)")
    http = await admin_app.client(Role.analyst)
    status, body, _ = await download(http, "/api/exports/campaigns.csv")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [(r["campaign"], r["variant"], r["sent"]) for r in rows] == [
        ("'=HYPERLINK(evil)", "A", "4"),
        ("'=HYPERLINK(evil)", "B", "4"),
    ]
    status, body, _ = await download(http, "/api/exports/campaigns.parquet")
    table = pq.read_table(io.BytesIO(body))
    assert table.column("sent").to_pylist() == [4, 4] and table.schema == RESULTS.schema


async def test_refusals(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool, contacts=4)
    marketer = await admin_app.client(Role.marketer)
    assert (await download(marketer, "/api/exports/campaigns.csv"))[0] == 403
    analyst = await admin_app.client(Role.analyst)
    assert (await download(analyst, "/api/exports/campaigns.xlsx"))[0] == 404
    assert (await download(analyst, "/api/exports/campaigns/999/messages.csv"))[0] == 404
    path = f"/api/exports/campaigns/{seeded.campaign_id}/messages.csv"
    assert (await download(analyst, path))[0] == 200
    async with analyst.get("/exports") as reply:
        assert reply.status == 200 and "full phone numbers" not in await reply.text()


async def test_messages_come_in_bounded_chunks(admin_app: AdminApp) -> None:
    seeded = await seed_campaign(admin_app.admin.pool, contacts=10)
    sizes = [
        len(rows)
        async for rows in export_store.message_chunks(admin_app.admin.pool, seeded.campaign_id, 3)
    ]
    assert sizes == [3, 3, 3, 1]
    written: list[bytes] = []

    async def write(data: bytes) -> None:
        written.append(data)

    chunks = export_store.message_chunks(admin_app.admin.pool, seeded.campaign_id, 3)
    assert await write_export(chunks, MESSAGES, Format.parquet, True, write) == 10
    assert len([w for w in written if w]) >= 4  # a row group per chunk, then the footer
    assert pq.read_table(io.BytesIO(b"".join(written))).num_rows == 10


def test_csv_cells_that_look_like_formulas_are_defused() -> None:
    row = (1, 2, "A", "+79161234567", "@cmd", 1, None, "-x", "=1+1", None, None, None, None, 0)
    text = csv_bytes([row], MESSAGES, header=False).decode()
    assert text == "1,2,A,+79161234567,'@cmd,1,,'-x,'=1+1,,,,,0\r\n"
