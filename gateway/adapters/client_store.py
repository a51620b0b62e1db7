"""Clients, their API keys (stored as SHA-256 of a 256-bit random token) and their terms:
balance and credit limit (see gateway/core/billing.py), TPS and daily quota."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal

import aiopg

from gateway.adapters.pg import execute, fetch
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


async def add_key(pool: aiopg.Pool, client_id: int) -> str:
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    await execute(
        pool,
        "INSERT INTO api_keys (key_hash, client_id, prefix) VALUES (%s, %s, %s)",
        (hash_key(api_key), client_id, api_key[:10]),
    )
    return api_key


async def by_key(pool: aiopg.Pool, api_key: str) -> Client | None:
    rows = await fetch(
        pool,
        "SELECT c.id, c.name, c.callback_url, c.default_sender, c.tps, c.daily_quota, "
        "c.balance IS NOT NULL FROM api_keys k "
        "JOIN clients c ON c.id = k.client_id WHERE k.key_hash = %s AND k.revoked_at IS NULL",
        (hash_key(api_key),),
    )
    return Client(*rows[0]) if rows else None


async def by_name(pool: aiopg.Pool, name: str) -> Client | None:
    rows = await fetch(
        pool,
        "SELECT id, name, callback_url, default_sender, tps, daily_quota, balance IS NOT NULL "
        "FROM clients WHERE name = %s",
        (name,),
    )
    return Client(*rows[0]) if rows else None
