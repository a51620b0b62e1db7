"""JSON logs of a real gateway: a message's life (accepted → submitted → delivered) is on
lines that all carry its id, and no line holds its number or its text."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store
from gateway.core.masking import find_phones
from gateway.embedded import ServerUrls, free_port
from loadtest.processes import spawn, wait_for_http
from loadtest.smsc import SmscSimulator
from smsgw.demo import demo_config
from tests.e2e.test_durability import settle
from tests.logscan import CANARY, register_text

NUMBER = "+79215557788"
TEXT = f"Код {CANARY} 4417, никому не сообщайте"


@pytest.mark.timeout(120)
async def test_a_message_s_life_is_traced_by_its_id_and_never_its_number(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> None:
    work = Path(tempfile.mkdtemp(prefix="sgj", dir="/tmp"))
    port = free_port()
    config = demo_config(smsc.port, port, 50)
    config = config.replace('log_level = "WARNING"', 'log_level = "DEBUG"\nlog_format = "json"')
    (work / "gw.toml").write_text(config)
    env = {"DATABASE_URL": server_urls.database_url, "REDIS_URL": server_urls.redis_url}
    argv = ["-m", "smsgw.cli", "--config", str(work / "gw.toml"), "run"]
    gateway = spawn("gateway-json", argv, work, env)
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_for_http, gateway, f"{base}/v1/ready")
        message_id = await _send(base, (await client_store.create(pool, "json-logs")).api_key)
        await settle(pool, {message_id}, 30)
    finally:
        code = await asyncio.to_thread(gateway.stop, 30.0)
    raw = gateway.log_path.read_text()
    assert code == 0, raw[-3000:]
    lines = [json.loads(line) for line in raw.splitlines()]  # every line is one JSON event
    assert all({"ts", "level", "logger", "process", "message"} <= line.keys() for line in lines)
    ours = [line for line in lines if line.get("message_id") == message_id]
    assert {"accepted", "submitted", "delivered"} <= {line["message"] for line in ours}
    for line in lines:
        if message_id in line["message"]:  # a line that names the message carries its id
            assert line.get("message_id") == message_id, line
    _assert_nothing_personal(raw)


async def _send(base: str, api_key: str) -> str:
    register_text(TEXT)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        body: dict[str, Any] = {"to": NUMBER, "from": "Shop", "text": TEXT}
        async with http.post("/v1/messages", json=body) as response:
            assert response.status == 202, await response.text()
            return str((await response.json())["id"])


def _assert_nothing_personal(raw: str) -> None:
    assert next(find_phones(raw), None) is None
    assert CANARY not in raw and "никому" not in raw and NUMBER[1:] not in raw
