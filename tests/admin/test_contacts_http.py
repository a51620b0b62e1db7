"""Contacts and audiences over HTTP: masking and its audit, CSV upload, the CRM's API, the
builder's preview and the audiences API, each checked against the role table."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from admin.adapters import user_store
from admin.adapters.contact_store import upsert_contacts
from admin.core.contacts import parse_contact
from admin.core.roles import Role
from gateway.adapters.pg import fetch
from tests.admin.conftest import AdminApp

PHONES = ["+79211234567", "+79161112233", "+73432123456"]


async def _seed(app: AdminApp) -> None:
    await upsert_contacts(app.admin.pool, [
        parse_contact({"phone": PHONES[0], "first_name": "Анна", "tags": "vip", "city": "Москва"}),
        parse_contact({"phone": PHONES[1], "first_name": "Борис", "tags": "new"}),
        parse_contact({"phone": PHONES[2], "first_name": "Вера", "tags": "vip,new"}),
    ])  # fmt: skip


async def _audits(app: AdminApp, action: str) -> list[tuple[Any, ...]]:
    return await fetch(
        app.admin.pool, "SELECT actor, target, detail FROM admin.audit WHERE action = %s", (action,)
    )


async def _json(http: aiohttp.ClientSession, method: str, url: str, body: Any = None,
                status: int = 200) -> Any:  # fmt: skip
    headers = {"X-CSRF-Token": http.csrf, "Accept": "application/json"}  # type: ignore[attr-defined]
    async with http.request(method, url, json=body, headers=headers) as reply:
        assert reply.status == status, await reply.text()
        return await reply.json()


async def test_the_list_masks_phones_and_audits_revealing(admin_app: AdminApp) -> None:
    await _seed(admin_app)
    marketer = await admin_app.client(Role.marketer)
    async with marketer.get("/contacts?reveal=1") as reply:
        page = await reply.text()
    assert reply.status == 200 and 'id="contacts-total" data-total="3"' in page
    assert PHONES[0] not in page and "+79*******67" in page and 'id="reveal-phones"' not in page
    assert not await _audits(admin_app, "contacts.read_pii")

    operator = await admin_app.client(Role.operator)
    async with operator.get("/contacts?q=анна&reveal=1") as reply:
        page = await reply.text()
    assert PHONES[0] in page and PHONES[1] not in page
    [(actor, _, detail)] = await _audits(admin_app, "contacts.read_pii")
    assert actor.startswith("operator") and len(detail["ids"]) == 1


async def test_json_list_pages_by_id(admin_app: AdminApp) -> None:
    await _seed(admin_app)
    marketer = await admin_app.client(Role.marketer)
    body = await _json(marketer, "GET", "/api/contacts")
    assert [c["first_name"] for c in body["contacts"]] == ["Анна", "Борис", "Вера"]
    assert body["next_after"] is None and body["contacts"][0]["phone"] == "+79*******67"
    await _json(marketer, "GET", "/api/contacts?after=x", status=400)
    await _json(marketer, "GET", f"/api/contacts?after={2**64}", status=400)
    await _json(marketer, "DELETE", f"/api/audiences/{2**64}", status=404)


async def test_roles_without_contacts_are_refused(admin_app: AdminApp) -> None:
    analyst = await admin_app.client(Role.analyst)
    for url in ("/api/contacts", "/api/audiences"):
        body = await _json(analyst, "GET", url, status=403)
        assert body["error"]["code"] == "forbidden"
    operator = await admin_app.client(Role.operator)  # reads contacts, may not import
    form = aiohttp.FormData()
    form.add_field("file", b"phone\n+79211234567\n", filename="c.csv")
    async with operator.post(f"/contacts/import?_csrf={operator.csrf}", data=form,  # type: ignore[attr-defined]
                             headers={"Accept": "application/json"}) as reply:  # fmt: skip
        assert reply.status == 403


async def _upload(http: aiohttp.ClientSession, data: bytes, accept: str) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="contacts.csv", content_type="text/csv")
    url = f"/contacts/import?_csrf={http.csrf}"  # type: ignore[attr-defined]
    reply = await http.post(url, data=form, headers={"Accept": accept})
    await reply.read()
    return reply


async def test_csv_upload_reports_lines(admin_app: AdminApp) -> None:
    marketer = await admin_app.client(Role.marketer)
    data = "Телефон;Имя;Дата рождения\n89211234567;Анна;01.02.1990\n123;Плохой;\n".encode()
    reply = await _upload(marketer, data, "application/json")
    assert reply.status == 200
    body = await reply.json()
    assert (body["inserted"], body["failed"]) == (1, 1)
    assert body["errors"] == [
        {"line": 3, "field": "phone", "message": body["errors"][0]["message"]}
    ]
    [(_, target, detail)] = await _audits(admin_app, "contacts.import")
    assert target == "contacts.csv" and detail["inserted"] == 1

    page = await _upload(marketer, data, "text/html")
    html = await page.text()
    assert 'id="import-report"' in html and 'id="import-updated">1<' in html
    assert 'data-line="3"' in html

    bad = await _upload(marketer, b"name\nx\n", "application/json")
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "file"


async def test_upload_needs_the_csrf_token(admin_app: AdminApp) -> None:
    marketer = await admin_app.client(Role.marketer)
    form = aiohttp.FormData()
    form.add_field("file", b"phone\n+79211234567\n", filename="c.csv")
    async with marketer.post("/contacts/import", data=form) as reply:
        assert reply.status == 403


async def test_crm_api_upserts_with_a_token(admin_app: AdminApp) -> None:
    token = await user_store.create_token(admin_app.admin.pool, "crm")
    http = await admin_app.anonymous()
    auth = {"Authorization": f"Bearer {token}"}
    records = [{"phone": "8 921 123-45-67", "first_name": "Анна", "tags": ["vip"]},
               {"phone": "+79161112233", "custom": {"club": 5}}]  # fmt: skip
    async with http.post("/v1/contacts", json=records, headers=auth) as reply:
        assert reply.status == 200 and await reply.json() == {"inserted": 2, "updated": 0}
    async with http.post("/v1/contacts", json={"contacts": records[:1]}, headers=auth) as reply:
        assert await reply.json() == {"inserted": 0, "updated": 1}
    [(actor, _, _)] = (await _audits(admin_app, "contacts.api_upsert"))[:1]
    assert actor == "token:crm"

    bad = [records[0], {"phone": "12"}, {"phone": "+79031112233", "birth_date": "31.02.1990"}, 5]
    async with http.post("/v1/contacts", json=bad, headers=auth) as reply:
        body = await reply.json()
    assert reply.status == 422 and body["error"]["field"] == "contacts[1].phone"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "phone"), (2, "birth_date"), (3, "contact")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [(b"not json", 400, "body"), (b"[]", 422, "contacts"), (b'{"contacts": 5}', 422, "contacts"),
     (b"[" * 100_000 + b"]" * 100_000, 400, "body"),
     (b"[" + b"{}," * 1000 + b"{}]", 422, "contacts")],
)  # fmt: skip
async def test_crm_api_bad_bodies(
    admin_app: AdminApp, body: bytes, status: int, field: str
) -> None:
    token = await user_store.create_token(admin_app.admin.pool, "crm")
    http = await admin_app.anonymous()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with http.post("/v1/contacts", data=body, headers=headers) as reply:
        assert reply.status == status and (await reply.json())["error"]["field"] == field


async def test_crm_api_needs_a_token(admin_app: AdminApp) -> None:
    http = await admin_app.anonymous()
    async with http.post("/v1/contacts", json=[{"phone": PHONES[0]}]) as reply:
        assert reply.status == 401
    marketer = await admin_app.client(Role.marketer)  # a session is not a token
    await _json(marketer, "POST", "/v1/contacts", [{"phone": PHONES[0]}], status=401)


async def test_preview_counts_and_samples_masked(admin_app: AdminApp) -> None:
    await _seed(admin_app)
    marketer = await admin_app.client(Role.marketer)
    query = {"match": "all", "rules": [{"field": "tags", "op": "any", "value": ["vip"]}]}
    body = await _json(marketer, "POST", "/api/audiences/preview", {"query": query})
    assert body["count"] == 2 and len(body["sample"]) == 2
    assert {s["first_name"] for s in body["sample"]} == {"Анна", "Вера"}
    assert all("*" in s["phone"] for s in body["sample"])
    bad = {"rules": [{"field": "tags", "op": "any", "value": ["vip"]},
                     {"field": "purchases", "op": "gt", "value": "many"}]}  # fmt: skip
    error = await _json(marketer, "POST", "/api/audiences/preview", {"query": bad}, status=422)
    assert error["error"]["field"] == "query.rules[1].value"


async def test_audiences_api_and_pages(admin_app: AdminApp) -> None:
    marketer = await admin_app.client(Role.marketer)
    query = {"match": "any", "rules": [{"field": "city", "op": "eq", "value": "Москва"}]}
    made = await _json(marketer, "POST", "/api/audiences", {"name": "Москвичи", "query": query},
                       status=201)  # fmt: skip
    await _json(
        marketer, "POST", "/api/audiences", {"name": "москвичи", "query": query}, status=409
    )
    await _json(marketer, "POST", "/api/audiences", {"name": "", "query": query}, status=422)
    listed = await _json(marketer, "GET", "/api/audiences")
    assert listed["audiences"] == [{"id": made["id"], "name": "Москвичи", "query": query}]
    async with marketer.get("/audiences") as reply:
        assert 'class="audience-link"' in await reply.text()
    async with marketer.get(f"/audiences/{made['id']}") as reply:
        page = await reply.text()
    assert f'data-id="{made["id"]}"' in page and 'id="audience-catalog"' in page
    async with marketer.get("/audiences/new") as reply:
        assert reply.status == 200
    async with marketer.get("/audiences/999") as reply:
        assert reply.status == 404
    renamed = {"name": "Москва", "query": query}
    await _json(marketer, "PUT", f"/api/audiences/{made['id']}", renamed)
    await _json(marketer, "PUT", "/api/audiences/999", renamed, status=404)
    await _json(marketer, "DELETE", f"/api/audiences/{made['id']}")
    await _json(marketer, "DELETE", f"/api/audiences/{made['id']}", status=404)
    actions = [a for a in ("audience.create", "audience.update", "audience.delete")
               if await _audits(admin_app, a)]  # fmt: skip
    assert len(actions) == 3
