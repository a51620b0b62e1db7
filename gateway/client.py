"""The one way a consumer (the admin's campaigns, helpdesk, portal...) sends through the
gateway: ``POST /v1/messages/batch`` with an API key, over one aiohttp session.

Errors::

    GatewayClientError            the gateway refused the whole request, or never answered
    ├── RequestRefused            a 4xx for the whole request (bad key, funds, a bad batch):
    │                             retrying the same request cannot help; names code and field
    └── GatewayUnavailable        429 / 503 / connection errors outlasted the retry budget

A refused *message* is not an error: it comes back in ``BatchResult.rejected`` with the
field and code the gateway named. 429 and 503 are retried after ``Retry-After`` (or a
jittered backoff when there is none), within a bounded budget; ``retry_delay`` is the pure
policy and ``send_batch`` does the sleeping (as redis-py splits backoff and retry). A
resent batch makes no duplicate when its messages carry a ``client_ref`` (invariant 6).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from providers.backoff import backoff_delay

log = logging.getLogger("gateway.client")

MAX_BATCH = 1000  # the gateway's ``http.max_batch`` default
RETRYABLE = frozenset({429, 502, 503, 504})


class GatewayClientError(Exception):
    def __init__(self, message: str, status: int = 0, code: str = "", field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


class RequestRefused(GatewayClientError):
    """A 4xx for the whole request."""


class GatewayUnavailable(GatewayClientError):
    """The gateway stayed busy or unreachable for longer than the retry budget."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    to: str
    text: str
    sender: str | None = None
    client_ref: str | None = None
    priority: str = "transactional"
    validity: int | None = None  # seconds
    callback_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"to": self.to, "text": self.text, "priority": self.priority}
        optional = {
            "from": self.sender,
            "client_ref": self.client_ref,
            "validity": self.validity,
            "callback_url": self.callback_url,
        }
        return body | {k: v for k, v in optional.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Sent:
    index: int  # into the list given to ``send_batch``
    message_id: int
    parts: int
    duplicate: bool  # the client_ref was already accepted: this is that message


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    field: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    sent: tuple[Sent, ...]
    rejected: tuple[Rejected, ...]


_Item = TypeVar("_Item", Sent, Rejected)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8  # tries in all, the first included
    base_s: float = 0.25
    cap_s: float = 10.0  # longest single wait; a longer Retry-After gives up instead
    budget_s: float = 60.0  # total waiting per batch


def retry_delay(
    policy: RetryPolicy, attempt: int, retry_after: float | None, waited: float
) -> float | None:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0), or None to
    give up: out of tries, out of budget, or told to come back later than ``cap_s``
    (a daily quota that resets at midnight is not worth holding a batch for)."""
    if attempt + 1 >= policy.attempts:
        return None
    if retry_after is not None and retry_after > policy.cap_s:
        return None
    delay = max(retry_after or 0.0, backoff_delay(attempt, policy.base_s, policy.cap_s))
    delay = min(delay, policy.cap_s)
    return delay if waited + delay <= policy.budget_s else None


class GatewayClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/v1/messages/batch"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.policy = policy

    @classmethod
    @asynccontextmanager
    async def open(
        cls, base_url: str, api_key: str, policy: RetryPolicy = RetryPolicy()
    ) -> AsyncIterator[GatewayClient]:
        timeout = aiohttp.ClientTimeout(total=60, connect=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield cls(session, base_url, api_key, policy)

    async def send_batch(self, messages: Sequence[Outgoing]) -> BatchResult:
        """Send any number of messages, ``MAX_BATCH`` per request, in order."""
        sent: list[Sent] = []
        rejected: list[Rejected] = []
        for start in range(0, len(messages), MAX_BATCH):
            part = await self._send_one(messages[start : start + MAX_BATCH])
            sent += [_shift(s, start) for s in part.sent]
            rejected += [_shift(r, start) for r in part.rejected]
        return BatchResult(tuple(sent), tuple(rejected))

    async def _send_one(self, messages: Sequence[Outgoing]) -> BatchResult:
        body = json.dumps({"messages": [m.to_json() for m in messages]}, ensure_ascii=False)
        waited = 0.0
        for attempt in range(self.policy.attempts):
            status, retry_after, reply = await self._post(body)
            if status not in RETRYABLE and status != 0:
                return _result(status, reply)
            delay = retry_delay(self.policy, attempt, retry_after, waited)
            if delay is None:
                break
            log.info("gateway answered %s; retrying in %.2f s", status or "no answer", delay)
            await asyncio.sleep(delay)
            waited += delay
        raise GatewayUnavailable(f"the gateway stayed unavailable ({status or 'no answer'})",
                                 status, _code(reply))  # fmt: skip

    async def _post(self, body: str) -> tuple[int, float | None, Any]:
        """(status, Retry-After, JSON body); status 0 when the connection failed."""
        headers = self._headers | {"Content-Type": "application/json"}
        try:
            async with self._session.post(self._url, data=body.encode(), headers=headers) as r:
                return r.status, _retry_after(r.headers.get("Retry-After")), await _body(r)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            log.warning("gateway unreachable: %r", exc)
            return 0, None, None


async def _body(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def _code(reply: Any) -> str:
    error = reply.get("error") if isinstance(reply, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def _result(status: int, reply: Any) -> BatchResult:
    """The per-message answer (202, or 422 when every message was refused), or raise."""
    if isinstance(reply, dict) and "accepted" in reply and "rejected" in reply:
        return BatchResult(
            tuple(_sent(item) for item in reply["accepted"]),
            tuple(_rejected(item) for item in reply["rejected"]),
        )
    error = reply.get("error") if isinstance(reply, dict) else None
    error = error if isinstance(error, dict) else {}
    raise RequestRefused(
        str(error.get("message", f"the gateway answered {status}")),
        status,
        str(error.get("code", "")),
        error.get("field"),
    )


def _sent(item: dict[str, Any]) -> Sent:
    return Sent(int(item["index"]), int(item["id"]), int(item["parts"]), bool(item["duplicate"]))


def _rejected(item: dict[str, Any]) -> Rejected:
    return Rejected(int(item["index"]), str(item["field"]), str(item["code"]), str(item["message"]))


def _shift(item: _Item, by: int) -> _Item:
    return dataclasses.replace(item, index=item.index + by) if by else item
