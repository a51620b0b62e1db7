"""Sending and checking one-time passwords (the rules are in ``gateway/core/otp.py``).

A send, in order: validate the message the code will travel in (the normal rules: number,
sender, text); count it in the pumping counters (Redis, all or none; 429 naming the
counter, and an alert the first time a counter refuses in its window); store the
challenge (PostgreSQL, superseding the number's pending one); accept the SMS through the
normal submit path at ``otp`` priority, valid as long as the code. If the SMS is refused
(402, 429, 503) the challenge is deleted and the counters given back: nothing was sent.
The code itself exists only in this function and in the SMS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import aiopg
from redis.exceptions import RedisError

from gateway.adapters import otp_store
from gateway.adapters.failures import TRANSIENT
from gateway.adapters.otp_store import Alert, NewChallenge, PumpingCounters, Refusal, Stored
from gateway.core import otp
from gateway.core.billing import Limits
from gateway.core.errors import OtpLimited, OtpRefused, Overloaded
from gateway.core.ids import IdGenerator
from gateway.core.masking import mask_phone
from gateway.core.message import NewMessage
from gateway.core.numbers import region_of
from gateway.core.otp import Checked, Counter, OtpSettings, Outcome, Reason
from gateway.services.submit import SubmitService

log = logging.getLogger("gateway.otp")


@dataclass(frozen=True, slots=True)
class Sent:
    challenge: Stored
    duplicate: bool = False


class OtpService:
    def __init__(
        self,
        settings: OtpSettings,
        pepper: bytes,
        pool: aiopg.Pool,
        counters: PumpingCounters,
        submit: SubmitService,
        ids: IdGenerator,
    ) -> None:
        self.settings = settings
        self._pepper = pepper
        self._pool = pool
        self._counters = counters
        self._submit = submit
        self._ids = ids

    async def send(
        self, request: otp.OtpRequest, message: NewMessage, code: str, limits: Limits
    ) -> Sent:
        """``message`` carries ``code`` to ``request.to`` (already validated)."""
        client_id, to = message.client_id, message.destination
        found = await self._earlier(client_id, request.client_ref)
        if found is not None:
            return Sent(found, duplicate=True)
        country = region_of(to) or "ZZ"
        counters = otp.windows_for(self.settings, to, country, request.ip)
        challenge_id = self._ids.next()
        await self._admit(client_id, counters, challenge_id, country)
        try:
            return await self._store_and_send(request, message, code, challenge_id, limits)
        except _Duplicate as duplicate:
            await self._give_back(client_id, counters, challenge_id)
            return Sent(duplicate.stored, duplicate=True)
        except TRANSIENT as exc:
            await self._give_back(client_id, counters, challenge_id)
            raise _unavailable(exc) from None
        except Exception:
            await self._give_back(client_id, counters, challenge_id)
            raise

    async def _earlier(self, client_id: int, client_ref: str | None) -> Stored | None:
        if client_ref is None:
            return None
        try:
            return await otp_store.by_ref(self._pool, client_id, client_ref)
        except TRANSIENT as exc:
            raise _unavailable(exc) from None

    async def _admit(
        self, client_id: int, counters: list[Counter], send_id: int, country: str
    ) -> None:
        try:
            refusal = await self._counters.admit(client_id, counters, send_id, country)
        except (RedisError, OSError) as exc:  # unknown counts are not "under the limit"
            log.warning("otp counters unavailable: %r", exc)
            raise Overloaded("the OTP limiter is unavailable, retry shortly", 1.0) from None
        if refusal is not None:
            await self._alert(client_id, country, refusal)
            c = refusal.counter
            raise OtpLimited(c.reason.value, c.limit, c.seconds, refusal.retry_after_s)

    async def _alert(self, client_id: int, country: str, refusal: Refusal) -> None:
        """The first refusal of a counter in its window: a log line and a row operators see."""
        if not refusal.first:
            return
        c = refusal.counter
        subject = masked_subject(c)
        window = f"{c.seconds} s" if c.seconds else "UTC day"
        log.warning(
            "otp pumping alert: client %d, %s over %d per %s, country %s, subject %s",
            *(client_id, c.reason.value, c.limit, window, country, subject),
        )
        alert = Alert(client_id, c.reason.value, country, subject, c.limit, c.seconds)
        try:
            await otp_store.add_alert(self._pool, alert)
        except Exception as exc:  # the refusal stands; the log line has it
            log.warning("could not store an otp alert: %r", exc)

    async def _store_and_send(
        self,
        request: otp.OtpRequest,
        message: NewMessage,
        code: str,
        challenge_id: int,
        limits: Limits,
    ) -> Sent:
        salt = otp.new_salt()
        new = NewChallenge(
            challenge_id,
            message.client_id,
            message.destination,
            request.client_ref,
            salt,
            otp.code_hash(self._pepper, salt, challenge_id, code),
            request.ttl_s,
            self.settings.max_tries,
        )
        expires_at = await otp_store.insert(self._pool, new)
        if expires_at is None:  # the same client_ref, concurrently: that one stands
            found = await otp_store.by_ref(self._pool, message.client_id, request.client_ref or "")
            assert found is not None, "a conflicting client_ref has a row"
            raise _Duplicate(found)
        return await self._send_sms(new, message, expires_at, limits)

    async def _send_sms(
        self, new: NewChallenge, message: NewMessage, expires_at: datetime, limits: Limits
    ) -> Sent:
        try:
            [accepted] = await self._submit.accept([message], limits)
        except Exception:
            await otp_store.discard(self._pool, new.id)
            raise
        try:  # the SMS is accepted: from here on nothing is refused or given back
            await otp_store.attach_message(self._pool, new.id, accepted.id)
        except TRANSIENT as exc:
            log.warning("otp challenge %d: message id not recorded: %r", new.id, exc)
        return Sent(Stored(new.id, new.destination, expires_at, accepted.id))

    async def _give_back(self, client_id: int, counters: list[Counter], send_id: int) -> None:
        try:
            await self._counters.give_back(client_id, counters, send_id)
        except Exception as exc:  # the number loses one send for a window, no more
            log.warning("could not give back otp counters: %r", exc)

    async def check(self, client_id: int, challenge_id: int, code: str) -> Checked | None:
        try:
            return await otp_store.check_code(
                self._pool, client_id, challenge_id, code, self._pepper
            )
        except TRANSIENT as exc:  # rolled back: no try was spent
            raise _unavailable(exc) from None


def _unavailable(exc: BaseException) -> Overloaded:
    log.warning("otp store unavailable: %r", exc)
    return Overloaded("the database is unavailable, retry shortly", 2.0)


class _Duplicate(Exception):
    def __init__(self, stored: Stored) -> None:
        super().__init__("duplicate client_ref")
        self.stored = stored


def masked_subject(counter: Counter) -> str:
    """What a log line or an alert may show of the counted subject."""
    if counter.reason is Reason.DESTINATION:
        return mask_phone(counter.subject)
    if counter.reason is Reason.PREFIX:
        return f"{counter.subject}*"  # a range of numbers, not a subscriber
    if counter.reason is Reason.IP:
        return otp.mask_ip(counter.subject)
    return counter.subject


_REFUSED = {
    Outcome.WRONG: (422, "otp_wrong_code", "the code is wrong"),
    Outcome.EXPIRED: (410, "otp_expired", "the code has expired; ask for a new one"),
    Outcome.USED: (410, "otp_used", "the code was used or replaced by a newer one"),
    Outcome.LOCKED: (423, "otp_locked", "too many wrong codes; ask for a new one"),
}


def refusal_error(checked: Checked) -> OtpRefused | None:
    """The error for a check that did not verify; None when it did."""
    if checked.outcome is Outcome.VERIFIED:
        return None
    status, code, message = _REFUSED[checked.outcome]
    return OtpRefused(status, code, message, checked.challenge.tries_left)
