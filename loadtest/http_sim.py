"""HTTP SMS provider simulator: the ``form`` and ``json`` dialects (and a text one) on one port.

Theory of operation
-------------------
An aiohttp server with three send endpoints, each answering as the API it is modelled on:

* ``POST /2010-04-01/Accounts/{account}/Messages.json`` (``form``, Twilio-like): basic
  auth ``account:auth_token``; form fields To/From/Body/StatusCallback; answers 201 with
  ``sid``. ``GET …/Messages/{sid}.json`` returns a message's state (per-id polling).
* ``POST /sms/2/text/advanced`` (``json``, Infobip-like): ``Authorization: Bearer|App
  <api_key>``; answers ``messages[].messageId`` with a status group. ``GET /sms/1/reports``
  returns the reports of messages sent without a ``notifyUrl``, each once.
* ``GET /sys/send.php?login=&psw=&phones=&mes=`` (text, SMSC.ru-like): ``OK - 1 SMS, ID -
  n`` or ``ERROR = code (…)``, always HTTP 200; no receipts. For the ``generic`` dialect.

Every request counts towards ``stats.concurrent`` / ``max_concurrent``, waits out the
configured latency, then may draw a fault: throttled (429 with ``Retry-After``), a server
error (500) or a permanent refusal of the number (also every number that starts with
``invalid_prefix``). An accepted message gets a receipt outcome by weight and a due time;
due receipts wait in a heap that one ticker task drains. At its due time a receipt is sent
to the callback URL (``callback_url``, else the one in the request): ``form`` one signed
form POST per receipt, ``json`` one signed POST per URL with every report due (a
``results`` list). A ``json`` receipt without any URL is kept for ``/sms/1/reports``.
Callbacks are signed as ``providers.http.parse.signature`` does, with the built-in
dialects' schemes. ``inject_inbound`` posts an inbound (MO) message the same way.

All randomness comes from one ``random.Random(config.seed)``. Times in reports are UTC.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import heapq
import itertools
import json
import logging
import random
import signal
import sys
import time
import typing
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from providers.http.dialects import FORM, JSON
from providers.http.parse import signature

log = logging.getLogger("loadtest.http_sim")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BATCH_SLACK = 0.002  # seconds a due receipt may wait so that receipts leave in batches
RETRY_DELAY = 1.0  # seconds before a refused callback goes again
ATTEMPTS = 3
SENDERS = 32  # callback connections at once
REPORTS_PAGE_MAX = 1000


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class HttpSimConfig:
    """Every knob of the simulator; the CLI flags are generated from these fields."""

    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8088, "TCP port; 0 picks a free one")
    dialect: Literal["both", "form", "json"] = _setting("both", "which APIs to serve")
    account: str = _setting("AC0123456789", "form: account SID (URL and basic auth user)")
    auth_token: str = field(
        default="auth-token", repr=False, metadata={"doc": "form: password; signs callbacks"}
    )
    api_key: str = field(default="api-key", repr=False, metadata={"doc": "json: bearer token"})
    webhook_secret: str = field(
        default="hook-secret", repr=False, metadata={"doc": "json: signs callbacks"}
    )
    latency: float = _setting(0.0, "seconds each answer is held back")
    latency_jitter: float = _setting(0.0, "extra uniform random latency, seconds")
    throttle_ratio: float = _setting(0.0, "share of requests answered 429")
    retry_after: int = _setting(1, "Retry-After of a 429, seconds")
    error_ratio: float = _setting(0.0, "share of requests answered 500")
    invalid_ratio: float = _setting(0.0, "share of messages refused as an invalid number")
    invalid_prefix: str = _setting("+999", "numbers refused as invalid, always")
    receipt_delay: float = _setting(0.1, "seconds from submit to receipt")
    receipt_jitter: float = _setting(0.0, "extra uniform random receipt delay, seconds")
    delivered: float = _setting(1.0, "weight of delivered receipts")
    undeliverable: float = _setting(0.0, "weight of undeliverable receipts")
    expired: float = _setting(0.0, "weight of expired receipts")
    rejected: float = _setting(0.0, "weight of rejected receipts")
    callback_url: str = _setting("", "send receipts here, not to the request's URL")
    inbound_url: str = _setting("", "inject_inbound posts here (default: callback_url)")
    keep: int = _setting(100_000, "messages kept for polling")
    seed: int = _setting(0, "seed of the random generator")

    def __post_init__(self) -> None:
        ratios = (self.throttle_ratio, self.error_ratio, self.invalid_ratio)
        if min(ratios) < 0 or sum(ratios) > 1:
            raise ValueError("fault ratios must be >= 0 with a sum of at most 1")
        weights = [getattr(self, name) for name in OUTCOMES]
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("outcome weights must be >= 0 with a positive sum")
        if min(self.latency, self.latency_jitter, self.receipt_delay, self.receipt_jitter) < 0:
            raise ValueError("delays must be >= 0")


class Outcome(NamedTuple):
    form_status: str
    form_error: str
    json_group: str
    json_error: int  # GSM error, as in the SMSC simulator's receipts


OUTCOMES: dict[str, Outcome] = {
    "delivered": Outcome("delivered", "", "DELIVERED", 0),
    "undeliverable": Outcome("undelivered", "30005", "UNDELIVERABLE", 1),
    "expired": Outcome("undelivered", "30003", "EXPIRED", 27),
    "rejected": Outcome("failed", "30007", "REJECTED", 13),
}
_JSON_ERRORS = {
    0: "NO_ERROR",
    1: "EC_UNKNOWN_SUBSCRIBER",
    27: "EC_ABSENT_SUBSCRIBER",
    13: "EC_CALL_BARRED",
}
_GROUP_IDS = {"PENDING": 1, "UNDELIVERABLE": 2, "DELIVERED": 3, "EXPIRED": 4, "REJECTED": 5}


@dataclass
class HttpSimStats:
    """Counters since start; ``concurrent`` and ``receipts_scheduled`` are gauges."""

    requests: int = 0
    accepted: int = 0
    throttled: int = 0
    server_errors: int = 0
    invalid: int = 0
    unauthorized: int = 0
    bad_requests: int = 0
    receipts_scheduled: int = 0
    receipts_sent: int = 0
    receipt_failures: int = 0
    reports_polled: int = 0
    status_polls: int = 0
    inbound_sent: int = 0
    concurrent: int = 0
    max_concurrent: int = 0

    def snapshot(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class _Message:
    dialect: Literal["form", "json"]
    provider_id: str
    source: str
    destination: str
    url: str
    outcome: Outcome
    submitted_at: float  # wall clock
    due: float  # loop clock


@dataclass(frozen=True, slots=True)
class _Outgoing:
    url: str
    body: bytes
    headers: dict[str, str]
    count: int  # receipts in the body


class HttpSimulator:
    """An HTTP SMS provider on one TCP port; see the module docstring for how it works."""

    def __init__(self, config: HttpSimConfig | None = None) -> None:
        self.config = config or HttpSimConfig()
        self.stats = HttpSimStats()
        self._rng = random.Random(self.config.seed)
        self._ids = itertools.count(1)
        self._heap: list[tuple[float, int, _Message]] = []
        self._wake = asyncio.Event()
        self._messages: OrderedDict[str, _Message] = OrderedDict()  # form, for per-id polling
        self._reports: deque[_Message] = deque(maxlen=self.config.keep)  # json, to be pulled
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._senders: set[asyncio.Task[None]] = set()
        self.received: deque[tuple[str, str, str]] = deque(maxlen=1000)  # (api, to, text)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        await site.start()
        connector = aiohttp.TCPConnector(limit=SENDERS)
        self._client = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        )
        self._ticker = asyncio.create_task(self._run_ticker(), name="http-sim receipts")

    async def stop(self) -> None:
        tasks = [t for t in (self._ticker, *self._senders) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> HttpSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the simulator is not listening")
        host, port = self._runner.addresses[0][:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def base_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def update(self, **changes: Any) -> None:
        """Replace settings live (all but host, port and dialect)."""
        if fixed := {"host", "port", "dialect"} & changes.keys():
            raise ValueError(f"cannot change {sorted(fixed)} while running")
        self.config = dataclasses.replace(self.config, **changes)
        if "seed" in changes:
            self._rng.seed(self.config.seed)

    def _app(self) -> web.Application:
        app = web.Application()
        form, json_ = (
            self.config.dialect in ("both", "form"),
            self.config.dialect in ("both", "json"),
        )
        base = "/2010-04-01/Accounts/{account}/Messages"
        routes = [
            *([("POST", base + ".json", self._form_submit)] if form else []),
            *([("GET", base + "/{sid}.json", self._form_status)] if form else []),
            *([("POST", "/sms/2/text/advanced", self._json_submit)] if json_ else []),
            *([("GET", "/sms/1/reports", self._json_reports)] if json_ else []),
            ("GET", "/sys/send.php", self._text_submit),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._counted(handler))
        return app

    def _counted(self, handler: Handler) -> Handler:
        async def counted(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests += 1
            stats.concurrent += 1
            stats.max_concurrent = max(stats.max_concurrent, stats.concurrent)
            try:
                await self._delay()
                return await handler(request)
            finally:
                stats.concurrent -= 1

        return counted

    async def _delay(self) -> None:
        config = self.config
        delay = config.latency
        if config.latency_jitter:
            delay += self._rng.uniform(0, config.latency_jitter)
        if delay:
            await asyncio.sleep(delay)

    def _draw_fault(self, destination: str) -> str | None:
        """``throttled``, ``error``, ``invalid`` or None; a ratio of 0 draws nothing."""
        config = self.config
        if destination.startswith(config.invalid_prefix):
            return "invalid"
        faults = (
            ("throttled", config.throttle_ratio),
            ("error", config.error_ratio),
            ("invalid", config.invalid_ratio),
        )
        if not any(ratio for _, ratio in faults):
            return None
        draw = self._rng.random()
        for name, ratio in faults:
            if draw < ratio:
                return name
            draw -= ratio
        return None

    def _count_fault(self, fault: str) -> None:
        counter = {"throttled": "throttled", "error": "server_errors", "invalid": "invalid"}
        setattr(self.stats, counter[fault], getattr(self.stats, counter[fault]) + 1)

    # -- form (Twilio-like) ------------------------------------------------------------------

    async def _form_submit(self, request: web.Request) -> web.StreamResponse:
        if not self._form_authorized(request):
            return self._form_error(401, 20003, "Authenticate")
        data = await request.post()
        to, source, text = (str(data.get(k, "")) for k in ("To", "From", "Body"))
        if not to or not source or not text:
            self.stats.bad_requests += 1
            return self._form_error(400, 21604, "A 'To', 'From' and 'Body' are required")
        fault = self._draw_fault(to)
        if fault is not None:
            return self._form_fault(fault)
        sid = f"SM{next(self._ids):032x}"
        self.received.append(("form", to, text))
        self._accept("form", sid, source, to, str(data.get("StatusCallback", "")))
        answer = {
            "sid": sid,
            "status": "queued",
            "to": to,
            "from": source,
            "body": text,
            "num_segments": "1",
            "error_code": None,
        }
        return web.json_response(answer, status=201)

    def _form_authorized(self, request: web.Request) -> bool:
        config = self.config
        expected = base64.b64encode(f"{config.account}:{config.auth_token}".encode()).decode()
        return (
            request.match_info["account"] == config.account
            and request.headers.get("Authorization") == f"Basic {expected}"
        )

    def _form_fault(self, fault: str) -> web.Response:
        self._count_fault(fault)
        if fault == "throttled":
            response = self._form_error(429, 20429, "Too Many Requests")
            response.headers["Retry-After"] = str(self.config.retry_after)
            return response
        if fault == "error":
            return self._form_error(500, 20500, "Internal Server Error")
        return self._form_error(400, 21211, "The 'To' number is not a valid phone number.")

    def _form_error(self, status: int, code: int, message: str) -> web.Response:
        if status == 401:
            self.stats.unauthorized += 1
        body = {"code": code, "message": message, "status": status}
        return web.json_response(body, status=status)

    async def _form_status(self, request: web.Request) -> web.StreamResponse:
        if not self._form_authorized(request):
            return self._form_error(401, 20003, "Authenticate")
        self.stats.status_polls += 1
        message = self._messages.get(request.match_info["sid"])
        if message is None:
            return self._form_error(404, 20404, "The requested resource was not found")
        done = asyncio.get_running_loop().time() >= message.due
        outcome = message.outcome
        answer = {
            "sid": message.provider_id,
            "status": outcome.form_status if done else "sent",
            "error_code": int(outcome.form_error) if done and outcome.form_error else None,
            "date_updated": _rfc2822(time.time()),
        }
        return web.json_response(answer)

    # -- json (Infobip-like) -----------------------------------------------------------------

    async def _json_submit(self, request: web.Request) -> web.StreamResponse:
        if not self._json_authorized(request):
            return self._json_error(401, "UNAUTHORIZED", "Invalid login details")
        try:
            messages = _json_messages(await request.read())
        except (ValueError, KeyError, TypeError, IndexError):
            return self._json_error(400, "BAD_REQUEST", "Bad request")
        first = messages[0][1][0] if messages and messages[0][1] else ""
        fault = self._draw_fault("+" + first)
        if fault in ("throttled", "error"):
            self._count_fault(fault)
            return self._json_fault(fault)
        prefix = self.config.invalid_prefix
        answered = [
            self._json_accept(message, to, fault == "invalid" or ("+" + to).startswith(prefix))
            for message, destinations in messages
            for to in destinations
        ]
        return web.json_response({"bulkId": f"bulk-{next(self._ids)}", "messages": answered})

    def _json_authorized(self, request: web.Request) -> bool:
        offered = request.headers.get("Authorization", "")
        return offered in (f"Bearer {self.config.api_key}", f"App {self.config.api_key}")

    def _json_accept(self, message: dict[str, Any], to: str, invalid: bool) -> dict[str, Any]:
        if invalid:
            self._count_fault("invalid")
            status = {
                "groupId": 5,
                "groupName": "REJECTED",
                "id": 51,
                "name": "REJECTED_DESTINATION",
                "description": "Invalid destination",
            }
            return {"to": to, "status": status, "messageId": ""}
        message_id = f"{next(self._ids):012d}-sim"
        self.received.append(("json", to, str(message["text"])))
        self._accept(
            "json", message_id, str(message.get("from", "")), to, str(message.get("notifyUrl", ""))
        )
        status = {
            "groupId": 1,
            "groupName": "PENDING",
            "id": 26,
            "name": "PENDING_ACCEPTED",
            "description": "Message sent to next instance",
        }
        return {"to": to, "status": status, "messageId": message_id}

    def _json_fault(self, fault: str) -> web.Response:
        if fault == "throttled":
            response = self._json_error(429, "TOO_MANY_REQUESTS", "Too many requests")
            response.headers["Retry-After"] = str(self.config.retry_after)
            return response
        return self._json_error(500, "GENERAL_ERROR", "Something went wrong")

    def _json_error(self, status: int, message_id: str, text: str) -> web.Response:
        if status == 401:
            self.stats.unauthorized += 1
        if status == 400:
            self.stats.bad_requests += 1
        body = {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}
        return web.json_response(body, status=status)

    async def _json_reports(self, request: web.Request) -> web.StreamResponse:
        if not self._json_authorized(request):
            return self._json_error(401, "UNAUTHORIZED", "Invalid login details")
        try:
            limit = min(int(request.query.get("limit", "50")), REPORTS_PAGE_MAX)
        except ValueError:
            return self._json_error(400, "BAD_REQUEST", "limit must be a number")
        page = [self._reports.popleft() for _ in range(min(limit, len(self._reports)))]
        self.stats.reports_polled += len(page)
        return web.json_response({"results": [_json_report(m) for m in page]})

    # -- text (SMSC.ru-like) -----------------------------------------------------------------

    async def _text_submit(self, request: web.Request) -> web.StreamResponse:
        query, config = request.query, self.config
        if query.get("login") != config.account or query.get("psw") != config.auth_token:
            self.stats.unauthorized += 1
            return web.Response(text="ERROR = 2 (authorise error)")
        phones, text = query.get("phones", ""), query.get("mes", "")
        if not phones or not text:
            self.stats.bad_requests += 1
            return web.Response(text="ERROR = 1 (parameters error)")
        fault = self._draw_fault("+" + phones.lstrip("+"))
        if fault is not None:
            self._count_fault(fault)
            return _text_fault(fault)
        self.stats.accepted += 1
        self.received.append(("text", phones, text))
        return web.Response(text=f"OK - 1 SMS, ID - {next(self._ids)}")

    # -- receipts ----------------------------------------------------------------------------

    def _accept(
        self,
        dialect: Literal["form", "json"],
        provider_id: str,
        source: str,
        destination: str,
        url: str,
    ) -> None:
        config = self.config
        self.stats.accepted += 1
        due = asyncio.get_running_loop().time() + config.receipt_delay
        if config.receipt_jitter:
            due += self._rng.uniform(0, config.receipt_jitter)
        message = _Message(
            dialect,
            provider_id,
            source,
            destination,
            config.callback_url or url,
            self._draw_outcome(),
            time.time(),
            due,
        )
        if dialect == "form":
            self._remember(message)
        if message.url or dialect == "json":
            self._schedule(message)

    def _remember(self, message: _Message) -> None:
        self._messages[message.provider_id] = message
        while len(self._messages) > self.config.keep:
            self._messages.popitem(last=False)

    def _draw_outcome(self) -> Outcome:
        weights = [(getattr(self.config, name), outcome) for name, outcome in OUTCOMES.items()]
        live = [(w, o) for w, o in weights if w > 0]
        if len(live) == 1:
            return live[0][1]
        draw = self._rng.random() * sum(w for w, _ in live)
        for weight, outcome in live:
            if draw < weight:
                return outcome
            draw -= weight
        return live[-1][1]

    def _schedule(self, message: _Message) -> None:
        heapq.heappush(self._heap, (message.due, next(self._ids), message))
        self.stats.receipts_scheduled += 1
        if self._heap[0][2] is message:
            self._wake.set()

    async def _run_ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            due = self._heap[0][0] if self._heap else None
            if due is None:
                await self._wake.wait()
            elif due > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), due - loop.time() + BATCH_SLACK)
            self._send_due(loop.time())

    def _send_due(self, now: float) -> None:
        batches: dict[str, list[_Message]] = {}
        while self._heap and self._heap[0][0] <= now:
            message = heapq.heappop(self._heap)[2]
            self.stats.receipts_scheduled -= 1
            if message.dialect == "form":
                self._post(self._form_receipt(message))
            elif message.url:
                batches.setdefault(message.url, []).append(message)
            else:
                self._reports.append(message)
        for url, messages in batches.items():
            self._post(self._json_receipts(url, messages))

    def _form_receipt(self, message: _Message) -> _Outgoing:
        outcome = message.outcome
        fields = {
            "MessageSid": message.provider_id,
            "SmsSid": message.provider_id,
            "AccountSid": self.config.account,
            "From": message.source,
            "To": message.destination,
            "MessageStatus": outcome.form_status,
            "SmsStatus": outcome.form_status,
        }
        if outcome.form_error:
            fields["ErrorCode"] = outcome.form_error
        return self._signed_form(message.url, fields, 1)

    def _signed_form(self, url: str, fields: dict[str, str], count: int) -> _Outgoing:
        body = urlencode(fields).encode()
        spec = FORM.callback.signature
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            spec.header: signature(spec, self.config.auth_token, body, url),
        }
        return _Outgoing(url, body, headers, count)

    def _json_receipts(self, url: str, messages: list[_Message]) -> _Outgoing:
        doc = {"results": [_json_report(m) for m in messages]}
        return self._signed_json(url, doc, len(messages))

    def _signed_json(self, url: str, doc: object, count: int) -> _Outgoing:
        body = json.dumps(doc, ensure_ascii=False).encode()
        spec = JSON.callback.signature
        headers = {
            "Content-Type": "application/json",
            spec.header: signature(spec, self.config.webhook_secret, body, url),
        }
        return _Outgoing(url, body, headers, count)

    def _post(self, outgoing: _Outgoing, attempt: int = 1) -> None:
        task = asyncio.create_task(self._deliver(outgoing, attempt))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)

    async def _deliver(self, outgoing: _Outgoing, attempt: int) -> None:
        if await self._send(outgoing) < 300:
            self.stats.receipts_sent += outgoing.count
            return
        self.stats.receipt_failures += outgoing.count
        if attempt < ATTEMPTS:
            await asyncio.sleep(RETRY_DELAY)
            self._post(outgoing, attempt + 1)

    async def _send(self, outgoing: _Outgoing) -> int:
        """The callback's HTTP status; 599 when it could not be delivered at all."""
        assert self._client is not None
        try:
            async with self._client.post(
                outgoing.url, data=outgoing.body, headers=outgoing.headers
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("callback to %s failed: %r", outgoing.url, exc)
            return 599

    # -- inbound (MO) ------------------------------------------------------------------------

    async def inject_inbound(
        self,
        dialect: Literal["form", "json"],
        source: str,
        destination: str,
        text: str,
        url: str | None = None,
    ) -> int:
        """Post one inbound message, signed; returns the receiver's HTTP status."""
        target = url or self.config.inbound_url or self.config.callback_url
        if not target:
            raise ValueError("no URL to post the inbound message to")
        message_id = f"MO{next(self._ids):030x}"
        if dialect == "form":
            fields = {
                "MessageSid": message_id,
                "AccountSid": self.config.account,
                "From": source,
                "To": destination,
                "Body": text,
                "NumSegments": "1",
                "SmsStatus": "received",
            }
            outgoing = self._signed_form(target, fields, 1)
        else:
            result = {
                "messageId": message_id,
                "from": source.lstrip("+"),
                "to": destination,
                "text": text,
                "cleanText": text,
                "receivedAt": _iso(time.time()),
            }
            doc = {"results": [result], "messageCount": 1, "pendingMessageCount": 0}
            outgoing = self._signed_json(target, doc, 1)
        status = await self._send(outgoing)
        self.stats.inbound_sent += status < 300
        return status


def _json_messages(body: bytes) -> list[tuple[dict[str, Any], list[str]]]:
    """Each message of a send request with its destination numbers; raises when malformed."""
    messages = json.loads(body)["messages"]
    result = []
    for message in messages:
        destinations = [str(d["to"]) for d in message["destinations"]]
        if not destinations or not message["text"]:
            raise ValueError("a message needs destinations and text")
        result.append((message, destinations))
    if not result:
        raise ValueError("no messages")
    return result


def _json_report(message: _Message) -> dict[str, Any]:
    outcome = message.outcome
    group = outcome.json_group
    return {
        "messageId": message.provider_id,
        "to": message.destination,
        "sentAt": _iso(message.submitted_at),
        "doneAt": _iso(time.time()),
        "status": {"groupId": _GROUP_IDS[group], "groupName": group, "name": f"{group}_SIM"},
        "error": {
            "id": outcome.json_error,
            "name": _JSON_ERRORS[outcome.json_error],
            "permanent": outcome.json_error != 0,
        },
    }


def _text_fault(fault: str) -> web.Response:
    if fault == "throttled":
        return web.Response(text="ERROR = 9 (duplicate request, wait a minute)")
    if fault == "error":
        return web.Response(status=500, text="Internal Server Error")
    return web.Response(text="ERROR = 7 (invalid number format)")


def _iso(wall: float) -> str:
    moment = datetime.fromtimestamp(wall, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _rfc2822(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw-http-sim", description=__doc__.splitlines()[0])
    hints = typing.get_type_hints(HttpSimConfig)
    for f in fields(HttpSimConfig):
        hint = hints[f.name]
        options: dict[str, Any] = {"type": hint}
        if typing.get_origin(hint) is Literal:
            options = {"choices": typing.get_args(hint), "type": str}
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, default=f.default, help=f.metadata["doc"], **options)
    parser.add_argument("--stats-interval", type=float, default=0.0, help="print stats every N s")
    parser.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    return parser


async def serve(config: HttpSimConfig, stats_interval: float = 0.0) -> None:
    """Run until SIGINT/SIGTERM; announce the address on stdout, stats go to stderr."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with HttpSimulator(config) as sim:
        host, port = sim.address
        print(f"listening on {host}:{port}", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), stats_interval or None)
            if stats_interval:
                print(json.dumps(sim.stats.snapshot()), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        config = HttpSimConfig(**{f.name: getattr(args, f.name) for f in fields(HttpSimConfig)})
    except ValueError as exc:
        raise SystemExit(f"smsgw-http-sim: {exc}") from exc
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config, args.stats_interval))
    else:
        uvloop.run(serve(config, args.stats_interval))


if __name__ == "__main__":
    main()
