"""Contacts: the list and search page, CSV upload, and the CRM's upsert API.

Phone numbers are shown masked. A role with ``pii_read`` may ask for them in full
(``?reveal=1``); each such read is written to the audit log with the contact ids shown.
The CRM's ``POST /v1/contacts`` is all or nothing: one bad record refuses the request,
with every error listed by index and field, so the CRM can fix and resend it whole.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import BodyPartReader, web

from admin.adapters import contact_store
from admin.adapters.contact_store import ContactRow, ImportReport, json_safe
from admin.core.contacts import Contact, InvalidContact, parse_contact
from admin.core.roles import Permission, can
from admin.http.auth import audit, require, require_token
from admin.http.errors import AdminError, wants_json
from admin.http.keys import ADMIN
from admin.http.render import render
from providers.masking import mask_phone

PAGE = 50
MAX_API_BATCH = 1000
CHUNK = 1 << 16
SHOWN = ("first_name", "last_name", "city", "region", "timezone", "tags", "subscribed", "consent")


def _after(request: web.Request) -> int:
    raw = request.query.get("after", "0")
    if not raw.isdigit() or int(raw) >= 2**63:
        raise AdminError("must be a contact id", "after", 400)
    return int(raw)


async def _page(request: web.Request, permission: Permission) -> dict[str, Any]:
    """One page of the list, phones masked unless revealed (and then audited)."""
    user = await require(request, permission)
    query, after = request.query.get("q", "").strip()[:100], _after(request)
    pool = request.app[ADMIN].pool
    rows = await contact_store.search_contacts(pool, query, after, PAGE)
    reveal = request.query.get("reveal") == "1" and can(user.role, Permission.pii_read)
    if reveal and rows:
        await audit(request, "contacts.read_pii", "contacts", {"ids": [r.id for r in rows]})
    return {
        "q": query,
        "contacts": [_shown(row, reveal) for row in rows],
        "next_after": rows[-1].id if len(rows) == PAGE else None,
        "may_reveal": can(user.role, Permission.pii_read),
        "revealed": reveal,
        "may_write": can(user.role, Permission.contacts_write),
    }


def _shown(row: ContactRow, reveal: bool) -> dict[str, Any]:
    phone = row.phone if reveal else mask_phone(row.phone)
    return {"id": row.id, "phone": phone, **{k: json_safe(row.fields[k]) for k in SHOWN}}


async def contacts_page(request: web.Request) -> web.Response:
    page = await _page(request, Permission.contacts_read)
    total = await contact_store.count_all(request.app[ADMIN].pool)
    return render(request, "contacts.html", total=total, report=None, **page)


async def contacts_api(request: web.Request) -> web.Response:
    return web.json_response(await _page(request, Permission.contacts_read))


# ---- CSV upload ------------------------------------------------------------------------------


async def _file_part(request: web.Request) -> BodyPartReader:
    if not request.content_type.startswith("multipart/"):
        raise AdminError("upload the file as multipart/form-data", "file", 400)
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            return part
    raise AdminError("no file in the upload", "file", 400)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def import_upload(request: web.Request) -> web.Response:
    await require(request, Permission.contacts_write)
    part = await _file_part(request)
    report = await contact_store.import_csv(request.app[ADMIN].pool, _chunks(part))
    await audit(request, "contacts.import", part.filename or "", _summary(report))
    status = 422 if report.fatal else 200  # the file as a whole was unreadable
    if wants_json(request):
        return web.json_response(_report_json(report), status=status)
    page = await _page(request, Permission.contacts_write)
    total = await contact_store.count_all(request.app[ADMIN].pool)
    return render(request, "contacts.html", status, total=total, report=report, **page)


def _summary(report: ImportReport) -> dict[str, Any]:
    return {"rows": report.rows, "inserted": report.inserted, "updated": report.updated,
            "failed": report.failed, "fatal": report.fatal}  # fmt: skip


def _report_json(report: ImportReport) -> dict[str, Any]:
    errors = [{"line": e.line, "field": e.field, "message": e.message} for e in report.errors]
    body: dict[str, Any] = {**_summary(report), "errors": errors}
    if report.fatal:
        body["error"] = {"code": "invalid", "message": report.fatal, "field": "file"}
    return body


# ---- the CRM's API ---------------------------------------------------------------------------


async def api_upsert(request: web.Request) -> web.Response:
    await require_token(request, Permission.integration)
    records = await _records(request)
    contacts, errors = _parse_all(records)
    if errors:
        first = errors[0]
        body = {"error": {"code": "invalid", "message": first["message"],
                          "field": f"contacts[{first['index']}].{first['field']}"},
                "errors": errors}  # fmt: skip
        return web.json_response(body, status=422)
    done = await contact_store.upsert_contacts(request.app[ADMIN].pool, contacts)
    await audit(request, "contacts.api_upsert", "contacts",
                {"inserted": done.inserted, "updated": done.updated})  # fmt: skip
    return web.json_response({"inserted": done.inserted, "updated": done.updated})


async def _records(request: web.Request) -> list[Any]:
    try:
        body = json.loads(await request.text())
    except (ValueError, RecursionError):  # bad or absurdly nested JSON
        raise AdminError("the body must be JSON", "body", 400) from None
    records = body.get("contacts") if isinstance(body, dict) else body
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_API_BATCH:
        raise AdminError(f"a list of 1 to {MAX_API_BATCH} contacts", "contacts", 422)
    return records


def _parse_all(records: Sequence[Any]) -> tuple[list[Contact], list[dict[str, Any]]]:
    contacts: list[Contact] = []
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            if not isinstance(record, dict):
                raise InvalidContact("must be an object", "contact")
            contacts.append(parse_contact(record))
        except InvalidContact as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
    return contacts, errors


def routes() -> list[web.RouteDef]:
    return [
        web.get("/contacts", contacts_page),
        web.get("/api/contacts", contacts_api),
        web.post("/contacts/import", import_upload),
        web.post("/v1/contacts", api_upsert),
    ]
