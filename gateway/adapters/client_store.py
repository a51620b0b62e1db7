"""Clients, their API keys (stored as SHA-256 of a 256-bit random token, with scopes; see
gateway/core/access.py) and their terms: balance and credit limit (see
gateway/core/billing.py), TPS and daily quota, the sender ids they may use."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiopg

from gateway.adapters.pg import execute, fetch
from gateway.core.access import ALL_SCOPES, DEFAULT_SCOPES, Scope
from gateway.core.billing import Limits
from gateway.core.signing import new_secret

KEY_PREFIX = "sk_"


@dataclass(frozen=True, slots=True)
class Client:
    id: int
    name: str
    callback_url: str | None
    default_sender: str | None
    tps: int | None = None
    daily_quota: int | None = None
    billed: bool = False
    allowed_senders: tuple[str, ...] | None = None  # None: any sender id
    scopes: frozenset[Scope] = ALL_SCOPES  # of the key it was found by

    @property
    def limits(self) -> Limits:
        return Limits(self.tps, self.daily_quota, self.billed)


@dataclass(frozen=True, slots=True)
class Terms:
    """What a client may spend and send. ``balance`` None: not billed."""

    balance: Decimal | None = None
    credit_limit: Decimal = Decimal(0)
    tps: int | None = None
    daily_quota: int | None = None


UNLIMITED = Terms()  # not billed, no TPS, no quota


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    api_key: str
    webhook_secret: str


def hash_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


# The opening balance is the first ledger line, so that balance = sum(ledger.amount).
CREATE_SQL = """
WITH c AS (
  INSERT INTO clients (name, callback_url, webhook_secret, default_sender, balance,
                       credit_limit, tps, daily_quota)
  VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, balance
), opening AS (
  INSERT INTO ledger (client_id, amount, reason) SELECT id, balance, 'topup' FROM c
  WHERE balance <> 0
)
SELECT id FROM c
"""


async def create(
    pool: aiopg.Pool,
    name: str,
    callback_url: str | None = None,
    default_sender: str | None = None,
    terms: Terms = UNLIMITED,
) -> NewClient:
    secret = new_secret()
    limits = (terms.tps, terms.daily_quota)
    money = (terms.balance, terms.credit_limit)
    rows = await fetch(
        pool, CREATE_SQL, (name, callback_url, secret, default_sender, *money, *limits)
    )
    billed = terms.balance is not None
    client = Client(rows[0][0], name, callback_url, default_sender, *limits, billed)
    return NewClient(client, await add_key(pool, client.id), secret)


async def add_key(
    pool: aiopg.Pool, client_id: int, scopes: Collection[Scope] = DEFAULT_SCOPES
) -> str:
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    await execute(
        pool,
        "INSERT INTO api_keys (key_hash, client_id, prefix, scopes) VALUES (%s, %s, %s, %s)",
        (hash_key(api_key), client_id, api_key[:10], sorted(s.value for s in scopes)),
    )
    return api_key


_CLIENT_COLUMNS = (
    "c.id, c.name, c.callback_url, c.default_sender, c.tps, c.daily_quota, "
    "c.balance IS NOT NULL, c.allowed_senders"
)


def _client(row: Sequence[Any], scopes: Collection[str] = ALL_SCOPES) -> Client:
    cid, name, url, sender, tps, quota, billed, senders = row[:8]
    allowed = None if senders is None else tuple(senders)
    keys = frozenset(map(Scope, scopes))
    return Client(cid, name, url, sender, tps, quota, billed, allowed, keys)


async def by_key(pool: aiopg.Pool, api_key: str) -> Client | None:
    """The client of a key that is not revoked, with that key's scopes."""
    rows = await fetch(
        pool,
        f"SELECT {_CLIENT_COLUMNS}, k.scopes FROM api_keys k "
        "JOIN clients c ON c.id = k.client_id WHERE k.key_hash = %s AND k.revoked_at IS NULL",
        (hash_key(api_key),),
    )
    return _client(rows[0], rows[0][8]) if rows else None


async def by_name(pool: aiopg.Pool, name: str) -> Client | None:
    rows = await fetch(pool, f"SELECT {_CLIENT_COLUMNS} FROM clients c WHERE name = %s", (name,))
    return _client(rows[0]) if rows else None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: never the key itself, only its first characters."""

    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


async def keys_of(pool: aiopg.Pool, client_id: int) -> list[KeyInfo]:
    rows = await fetch(
        pool,
        "SELECT prefix, scopes, created_at, revoked_at FROM api_keys WHERE client_id = %s "
        "ORDER BY created_at, prefix",
        (client_id,),
    )
    return [KeyInfo(r[0], tuple(r[1]), r[2], r[3]) for r in rows]


async def revoke(pool: aiopg.Pool, prefix: str) -> int:
    """Revoke the one live key with this prefix; returns how many live keys had it (a
    prefix shared by two revokes neither: the caller must say which)."""
    rows = await fetch(
        pool,
        "WITH live AS (SELECT key_hash FROM api_keys WHERE prefix = %s AND revoked_at IS NULL),"
        " done AS (UPDATE api_keys SET revoked_at = now() WHERE key_hash IN "
        "(SELECT key_hash FROM live) AND (SELECT count(*) FROM live) = 1)"
        " SELECT count(*) FROM live",
        (prefix,),
    )
    return int(rows[0][0])


async def set_senders(pool: aiopg.Pool, client_id: int, senders: Sequence[str] | None) -> None:
    """The sender ids the client may use (with its default); None: any."""
    await execute(
        pool,
        "UPDATE clients SET allowed_senders = %s WHERE id = %s",
        (None if senders is None else list(senders), client_id),
    )
