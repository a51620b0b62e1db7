"""The HTTP API's contract: validation, auth, idempotency, batches, errors as JSON."""

from __future__ import annotations

import io
from typing import Any

from tests.e2e.conftest import Api, count


async def post_raw(api: Api, path: str, data: bytes, **headers: str) -> tuple[int, Any]:
    async with api.http.post(path, data=io.BytesIO(data), headers=headers) as response:
        return response.status, await response.json()


async def test_invalid_fields_are_named(api: Api) -> None:
    status, body = await api.send(to="not a number", text="hi")
    assert status == 422 and body["error"]["field"] == "to"
    status, body = await api.send(to="+79211234567", text="hi", priority="urgent")
    assert status == 422 and body["error"]["field"] == "priority"


async def test_malformed_json_and_wrong_shapes_are_4xx(api: Api) -> None:
    status, body = await post_raw(api, "/v1/messages", b"{not json")
    assert status == 400 and body["error"]["field"] == "body"
    status, body = await post_raw(api, "/v1/messages", b"[1, 2]")
    assert status == 422 and body["error"]["field"] == "body"
    status, body = await post_raw(api, "/v1/messages", b"\xff\xfe")
    assert status == 400


async def test_oversized_body_is_refused(api: Api) -> None:
    status, body = await post_raw(api, "/v1/messages/batch", b"x" * (3 * 1024 * 1024))
    assert status == 413 and "error" in body


async def test_unknown_key_is_401_and_no_key_too(api: Api) -> None:
    async with api.http.post(
        "/v1/messages",
        json={"to": "+79211234567", "text": "x"},
        headers={"Authorization": "Bearer sk_wrong"},
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"]["field"] == "api_key"


async def test_client_ref_twice_yields_one_message(api: Api) -> None:
    first_status, first = await api.send(to="+79211234567", text="code 1", client_ref="order-42")
    again_status, again = await api.send(to="+79211234567", text="code 1", client_ref="order-42")
    assert (first_status, again_status) == (202, 200)
    assert again["id"] == first["id"] and again["duplicate"] is True
    assert await count(api.pool, "SELECT count(*) FROM messages WHERE client_ref = 'order-42'") == 1


async def test_batch_accepts_valid_items_and_names_bad_ones(api: Api) -> None:
    items = [
        {"to": "+79211234567", "text": "one"},
        {"to": "bogus", "text": "two"},
        {"to": "+79161234567", "text": "три", "client_ref": "b-3"},
        {"to": "+79161234567", "text": "dup", "client_ref": "b-3"},
    ]
    async with api.http.post("/v1/messages/batch", json={"messages": items}) as response:
        assert response.status == 202
        body = await response.json()
    assert [r["index"] for r in body["rejected"]] == [1]
    assert body["rejected"][0]["field"] == "messages[1].to"
    ids = [a["id"] for a in body["accepted"]]
    assert len(ids) == 3 and ids[1] == ids[2]  # the same client_ref inside one batch


async def test_batch_limits(api: Api) -> None:
    async with api.http.post("/v1/messages/batch", json={"messages": []}) as response:
        assert response.status == 422
        assert (await response.json())["error"]["field"] == "messages"


async def test_other_clients_messages_are_not_found(api: Api) -> None:
    async with api.http.get("/v1/messages/12345") as response:
        assert response.status == 404
    async with api.http.get("/v1/messages/abc") as response:
        assert response.status == 404
    async with api.http.get("/v1/messages/²") as response:  # isdigit() but not int()
        assert response.status == 404


async def test_health_ready_and_openapi(api: Api) -> None:
    async with api.http.get("/v1/health") as response:
        assert response.status == 200
    async with api.http.get("/v1/ready") as response:
        body = await response.json()
        assert response.status == 200 and body["checks"]["provider:sim"] is True
    async with api.http.get("/v1/openapi.json") as response:
        spec = await response.json()
        assert "/v1/messages/batch" in spec["paths"]
    async with api.http.delete("/v1/messages") as response:
        assert response.status == 405 and "error" in await response.json()


async def test_scheduled_message_waits_for_send_at(api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    status, body = await api.send(to="+79211234567", text="later", send_at=at)
    assert status == 202
    assert (await api.get(body["id"]))["status"] == "accepted"
    final = await api.wait_status(body["id"], "delivered")
    assert final["submitted_at"] >= at
