"""OTP over real HTTP: the code travels by SMPP to the simulator, is read there, verifies
once; lock-out, expiry, supersession; the pumping counters answer 429 and raise alerts."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store, pg
from gateway.adapters.client_store import Terms
from gateway.core.masking import mask_phone
from gateway.core.message import Priority
from gateway.core.otp import OtpSettings, Window
from gateway.embedded import ServerUrls
from gateway.settings import Secret
from loadtest.smpp_pdu import ShortMessage
from loadtest.smsc import SmscConfig, SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import gateway_settings, wait_for
from tests.logscan import register_text

TEMPLATE = "Shop code {code}, do not share"
OTP = OtpSettings(
    text=TEMPLATE,
    max_tries=3,
    per_destination=(Window(2, 600),),
    prefix_digits=9,
    per_prefix=(Window(4, 600),),
    per_ip=(Window(6, 600),),
    country_daily={"KZ": 1},
)


class RecordingSmsc(SmscSimulator):
    """The simulator, keeping what it was sent (the phone's side of the test)."""

    def __init__(self, config: SmscConfig) -> None:
        super().__init__(config)
        self.received: list[ShortMessage] = []

    def accept_submit(self, session: Any, sm: ShortMessage, sequence: int) -> bytes:
        self.received.append(sm)
        return super().accept_submit(session, sm, sequence)

    def codes_for(self, number: str) -> list[str]:
        texts = [sm.short_message.decode("latin-1") for sm in self.received
                 if sm.destination_addr.lstrip("+") == number.lstrip("+")]  # fmt: skip
        found = [re.fullmatch(r"Shop code (\d+), do not share", t) for t in texts]
        return [m.group(1) for m in found if m]

    def code_for(self, number: str, nth: int = 1) -> str | None:
        codes = self.codes_for(number)
        return codes[-1] if len(codes) >= nth else None


@dataclass
class OtpApi:
    http: aiohttp.ClientSession
    smsc: RecordingSmsc
    pool: aiopg.Pool
    client_id: int

    async def post(self, path: str, body: Any) -> tuple[int, dict[str, Any], Any]:
        async with self.http.post(path, json=body) as response:
            return response.status, await response.json(), response.headers

    async def send(self, to: str, **extra: Any) -> tuple[int, dict[str, Any], Any]:
        return await self.post("/v1/otp", {"to": to, **extra})

    async def check(self, challenge: str, code: str) -> tuple[int, dict[str, Any]]:
        status, body, _ = await self.post(f"/v1/otp/{challenge}/check", {"code": code})
        return status, body

    async def code(self, number: str, nth: int = 1) -> str:
        """The latest code sent to ``number``, once ``nth`` codes have reached it."""
        found: str = await wait_for(lambda: _async(self.smsc.code_for(number, nth)), within=10)
        register_text(TEMPLATE.replace("{code}", found))  # no log line may quote the SMS
        return found

    async def alerts(self) -> list[dict[str, Any]]:
        async with self.http.get("/v1/otp/alerts") as response:
            assert response.status == 200
            return list((await response.json())["alerts"])


async def _async(value: Any) -> Any:
    return value


@pytest.fixture
async def smsc() -> AsyncIterator[RecordingSmsc]:
    config = SmscConfig(port=0, system_id="smsgw", password="secret", receipt_delay=0.05)
    async with RecordingSmsc(config) as sim:
        yield sim


async def _open(
    server_urls: ServerUrls, pool: aiopg.Pool, smsc: RecordingSmsc, terms: Terms | None = None
) -> AsyncIterator[OtpApi]:
    settings = dataclasses.replace(
        gateway_settings(smsc.port), otp=OTP, otp_secret=Secret("test pepper")
    )
    async with serving(settings, server_urls):
        created = await client_store.create(
            pool, "otp-client", default_sender="Shop", **({"terms": terms} if terms else {})
        )
        headers = {"Authorization": f"Bearer {created.api_key}"}
        base = f"http://127.0.0.1:{settings.http.port}"
        async with aiohttp.ClientSession(base, headers=headers) as http:
            yield OtpApi(http, smsc, pool, created.client.id)


@pytest.fixture
async def api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: RecordingSmsc
) -> AsyncIterator[OtpApi]:
    async for opened in _open(server_urls, pool, smsc):
        yield opened


async def test_the_code_arrives_by_sms_and_verifies_once(api: OtpApi) -> None:
    status, body, _ = await api.send("8 921 123-45-67", ip="203.0.113.9")
    assert status == 202, body
    assert body["to"] == "+79211234567" and body["duplicate"] is False
    code = await api.code("+79211234567")
    assert len(code) == 6 and code not in str(body)
    stored = await pg.fetch(api.pool, "SELECT code_hash, salt FROM otp_challenges")
    assert code.encode() not in bytes(stored[0][0]) + bytes(stored[0][1])
    async with api.http.get(f"/v1/messages/{body['message_id']}") as response:
        assert (await response.json())["priority"] == Priority.OTP
    assert await api.check(body["id"], code) == (200, {"id": body["id"], "verified": True})
    status, again = await api.check(body["id"], code)
    assert status == 410 and again["error"]["code"] == "otp_used"


async def test_wrong_codes_lock_the_challenge(api: OtpApi) -> None:
    _, body, _ = await api.send("+79211234567")
    code = await api.code("+79211234567")
    wrong = "000000" if code != "000000" else "111111"
    first, second = await api.check(body["id"], wrong), await api.check(body["id"], wrong)
    assert (first[0], first[1]["error"]["code"], first[1]["error"]["tries_left"]) == (
        422,
        "otp_wrong_code",
        2,
    )
    assert second[0] == 422 and second[1]["error"]["field"] == "code"
    third = await api.check(body["id"], wrong)
    assert third[0] == 423 and third[1]["error"]["code"] == "otp_locked"
    assert (await api.check(body["id"], code))[0] == 423  # the right code is too late


async def test_concurrent_checks_verify_once_and_never_pass_the_tries(api: OtpApi) -> None:
    _, first, _ = await api.send("+79211234567")
    _, second, _ = await api.send("+79031234567")
    code = await api.code("+79211234567")
    right = await asyncio.gather(*(api.check(first["id"], code) for _ in range(12)))
    assert sorted(s for s, _ in right) == [200] + [410] * 11
    await api.code("+79031234567")
    wrong = await asyncio.gather(*(api.check(second["id"], "12345678") for _ in range(12)))
    assert sorted(s for s, _ in wrong) == [422, 422] + [423] * 10
    rows = await pg.fetch(
        api.pool, "SELECT tries FROM otp_challenges WHERE id = %s", (second["id"],)
    )
    assert rows[0][0] == 3


async def test_expired_and_superseded_codes_are_gone(api: OtpApi) -> None:
    _, old, _ = await api.send("+79211234567")
    old_code = await api.code("+79211234567")
    api.smsc.received.clear()
    _, new, _ = await api.send("+79211234567")
    new_code = await api.code("+79211234567")
    status, body = await api.check(old["id"], old_code)
    assert status == 410 and body["error"]["code"] == "otp_used"
    await pg.execute(api.pool, "UPDATE otp_challenges SET expires_at = now() - interval '1 s'")
    status, body = await api.check(new["id"], new_code)
    assert status == 410 and body["error"]["code"] == "otp_expired"


async def test_bad_input_is_a_4xx_naming_the_field(api: OtpApi) -> None:
    cases = [
        ({"to": "not a number"}, "to"),
        ({"to": "+79211234567", "text": "no placeholder"}, "text"),
        ({"to": "+79211234567", "ttl": 5}, "ttl"),
        ({"to": "+79211234567", "from": "x" * 40}, "from"),
        ({"to": "+79211234567", "ip": "1.2.3"}, "ip"),
    ]
    for body, field in cases:
        status, answer, _ = await api.post("/v1/otp", body)
        assert (status, answer["error"]["field"]) == (422, field), answer
    status, answer = await api.check("123", "")
    assert status == 422 and answer["error"]["field"] == "code"
    status, answer = await api.check("99999999", "123456")
    assert status == 404
    async with api.http.post("/v1/otp", data=b"{") as response:
        assert response.status == 400


async def test_a_client_ref_sends_one_code(api: OtpApi) -> None:
    _, first, _ = await api.send("+79211234567", client_ref="login-1")
    status, again, _ = await api.send("+79031234567", client_ref="login-1")
    assert status == 200 and again["id"] == first["id"] and again["duplicate"] is True
    assert again["to"] == "+79211234567"  # the challenge as it was made
    await api.code("+79211234567")
    assert len(api.smsc.received) == 1


async def test_per_number_velocity_answers_429_and_alerts(
    api: OtpApi, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(2):
        assert (await api.send("+79211234567"))[0] == 202
    with caplog.at_level(logging.WARNING, logger="gateway.otp"):
        status, body, headers = await api.send("+79211234567")
        assert (await api.send("+79211234567"))[0] == 429
    assert status == 429 and body["error"]["limit"] == "otp_destination"
    assert body["error"]["value"] == 2 and body["error"]["window_s"] == 600
    assert 1 <= int(headers["Retry-After"]) <= 600
    [line] = [r.getMessage() for r in caplog.records if "pumping alert" in r.getMessage()]
    assert "otp_destination" in line and mask_phone("+79211234567") in line
    [alert] = await api.alerts()  # one alert per counter per window, not per refusal
    assert (alert["limit"], alert["country"], alert["subject"]) == (
        "otp_destination",
        "RU",
        mask_phone("+79211234567"),
    )
    async with api.http.get("/metrics") as response:
        metrics = await response.text()
    assert 'smsgw_otp_blocked_total{country="RU",reason="otp_destination"} 2.0' in metrics


async def test_sequential_numbers_hit_the_range_limit(api: OtpApi) -> None:
    numbers = [f"+7921123450{i}" for i in range(5)]  # one range of the first 9 digits
    statuses = [(await api.send(n))[0] for n in numbers]
    assert statuses == [202] * 4 + [429]
    _, body, _ = await api.send(numbers[4])
    assert body["error"]["limit"] == "otp_prefix"
    assert (await api.send("+79031234567"))[0] == 202  # another range is untouched
    [alert] = await api.alerts()
    assert alert["subject"] == "792112345*"


async def test_one_ip_is_capped_across_numbers(api: OtpApi) -> None:
    numbers = [f"+79{n}1234567" for n in (21, 31, 11, 51, 61, 81, 82)]
    statuses = [(await api.send(n, ip="198.51.100.7"))[0] for n in numbers]
    assert statuses == [202] * 6 + [429]
    _, body, _ = await api.send(numbers[-1], ip="198.51.100.7")
    assert body["error"]["limit"] == "otp_ip"
    assert (await api.send(numbers[-1], ip="198.51.100.8"))[0] == 202
    assert (await api.alerts())[0]["subject"] == "198.51.100.*"


async def test_a_country_daily_cap(api: OtpApi) -> None:
    assert (await api.send("+77012345678"))[0] == 202
    status, body, headers = await api.send("+77771234567")
    assert status == 429 and body["error"]["limit"] == "otp_country_daily"
    assert body["error"]["window_s"] == 0 and 1 <= int(headers["Retry-After"]) <= 86400
    assert (await api.alerts())[0]["country"] == "KZ"


async def test_a_refused_sms_leaves_no_challenge_and_no_count(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: RecordingSmsc
) -> None:
    async for api in _open(server_urls, pool, smsc, Terms(daily_quota=0)):
        for _ in range(3):  # over the per-number limit of 2 if the counts were kept
            status, body, _ = await api.send("+79211234567")
            assert status == 429 and body["error"]["limit"] == "daily_quota", body
        assert await pg.fetch(pool, "SELECT count(*) FROM otp_challenges") == [(0,)]


async def test_two_gateways_share_the_counters_and_the_single_use(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: RecordingSmsc
) -> None:
    """Two gateways (own pools, Redis clients, HTTP ports) on one database and Redis, as
    two processes would be: a code verifies once across both, the counters are shared."""
    async for first in _open(server_urls, pool, smsc):
        settings = dataclasses.replace(
            gateway_settings(smsc.port), otp=OTP, otp_secret=Secret("test pepper")
        )
        async with serving(settings, server_urls, roles=("api",)):
            other = aiohttp.ClientSession(
                f"http://127.0.0.1:{settings.http.port}", headers=first.http.headers
            )
            async with other:
                second = OtpApi(other, smsc, pool, first.client_id)
                _, old, _ = await first.send("+79211234567")
                status, latest, _ = await second.send("+79211234567")
                assert status == 202
                assert (await first.send("+79211234567"))[0] == 429  # 2 per 10 min, together
                code = await first.code("+79211234567", nth=2)
                checks = [a.check(latest["id"], code) for a in (first, second) for _ in range(6)]
                statuses = sorted(s for s, _ in await asyncio.gather(*checks))
                assert statuses == [200] + [410] * 11
                assert (await second.check(old["id"], code))[0] == 410  # superseded
