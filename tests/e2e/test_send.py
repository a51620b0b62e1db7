"""HTTP in, SMPP out, receipt back: the walking skeleton end to end."""

from __future__ import annotations

from tests.e2e.conftest import Api


async def test_message_is_delivered_end_to_end(api: Api) -> None:
    status, body = await api.send(to="8 921 123-45-67", text="Привет! Ваш код 4821")
    assert status == 202, body
    assert body["to"] == "+79211234567" and body["encoding"] == "ucs2" and body["parts"] == 1
    final = await api.wait_status(body["id"], "delivered")
    assert final["provider"] == "sim" and final["price"] == "0.350000"
    assert final["accepted_at"] <= final["submitted_at"] <= final["done_at"]
