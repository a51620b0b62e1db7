"""The benchmark scenarios, as data, and the request bodies they send (pure: no IO).

Every message has its own number (``+7 921 …`` for the main load, ``+7 903 …`` for OTPs
beside a bulk), so that each row and each callback is told apart; the texts are the
everyday Russian case (UCS-2). Bodies are built from a JSON template by ``%``
formatting: a million messages must not cost the load generator a json.dumps each.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass

SHORT_TEXT = "Ваш заказ №{n} передан в доставку."  # one UCS-2 part
OTP_TEXT = "Ваш код подтверждения: {n}. Никому его не сообщайте."  # one UCS-2 part
LONG_TEXT = (  # three UCS-2 parts (177 characters)
    "Уважаемый клиент! Напоминаем, что по договору №{n} платёж необходимо внести до 25 "
    "числа. Оплатить можно в личном кабинете или в любом отделении банка. Спасибо, что "
    "вы с нами!"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    count: int  # messages of the main load
    batch: int  # messages per request: 1 posts to /v1/messages, more to /v1/messages/batch
    concurrency: int  # closed loop: clients; open loop (rate): the cap on requests in flight
    text: str = SHORT_TEXT
    priority: str = "bulk"
    rate: float | None = None  # messages/s offered (open loop); None: closed loop
    callbacks: bool = False  # a signed status callback per message to the load generator
    smsc_args: tuple[str, ...] = ()
    otp_rate: float = 0.0  # OTP messages/s sent one per request while the main load runs
    providers_late: bool = False  # the simulator starts once every message is accepted

    @property
    def path(self) -> str:
        return "/v1/messages" if self.batch == 1 else "/v1/messages/batch"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "single", "one message per request, 64 clients, a signed callback each",
            count=100_000, batch=1, concurrency=64, priority="transactional", callbacks=True,
        ),
        Scenario("batch", "1000 messages per request", count=1_000_000, batch=1000,
                 concurrency=4),
        Scenario(
            "otp-under-bulk", "OTP latency while a bulk campaign runs",
            count=200_000, batch=1000, concurrency=2, otp_rate=50.0,
        ),
        Scenario("long", "3-part UCS-2 messages", count=100_000, batch=1000, concurrency=4,
                 text=LONG_TEXT),
        Scenario(
            "throttled", "the simulator throttles 20 % of submits",
            count=100_000, batch=1000, concurrency=4, smsc_args=("--throttle-ratio", "0.2"),
        ),
        Scenario(
            "backlog", "queued while the provider is down, then drained",
            count=1_000_000, batch=1000, concurrency=4, providers_late=True,
        ),
    )
}  # fmt: skip


def with_overrides(
    scenario: Scenario, count: int | None, concurrency: int | None, rate: float | None
) -> Scenario:
    return dataclasses.replace(
        scenario,
        count=scenario.count if count is None else count,
        concurrency=scenario.concurrency if concurrency is None else concurrency,
        rate=scenario.rate if rate is None else rate,
    )


def item_template(text: str, prefix: str, priority: str) -> bytes:
    """One message's JSON with ``%07d`` for the number and ``%06d`` in the text."""
    text = text.replace("{n}", "%06d")
    message = {"to": f"+7{prefix}%07d", "text": text, "from": "SMSGW", "priority": priority}
    return json.dumps(message, separators=(",", ":")).encode()


def bodies(count: int, batch: int, template: bytes, first: int = 0) -> Iterator[tuple[bytes, int]]:
    """Request bodies and the messages each holds: numbers ``first`` … ``first+count-1``."""
    for start in range(first, first + count, batch):
        items = [
            template % (i, i % 1_000_000) for i in range(start, min(start + batch, first + count))
        ]
        if batch == 1:
            yield items[0], 1
        else:
            yield b'{"messages":[' + b",".join(items) + b"]}", len(items)


def main_bodies(scenario: Scenario) -> Iterator[tuple[bytes, int]]:
    template = item_template(scenario.text, "921", scenario.priority)
    return bodies(scenario.count, scenario.batch, template)


def otp_bodies(limit: int) -> Iterator[tuple[bytes, int]]:
    return bodies(limit, 1, item_template(OTP_TEXT, "903", "otp"))


def sample_text(scenario: Scenario) -> str:
    """The scenario's text as sent (for the raw ceiling's part count and size)."""
    return scenario.text.replace("{n}", "123456")
