"""Clients and their API keys (stored as SHA-256 of a 256-bit random token)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import aiopg

from gateway.adapters.pg import execute, fetch
from gateway.core.signing import new_secret

KEY_PREFIX = "sk_"


@dataclass(frozen=True, slots=True)
class Client:
    id: int
    name: str
    callback_url: str | None
    default_sender: str | None


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    api_key: str
    webhook_secret: str


def hash_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


async def create(
    pool: aiopg.Pool, name: str, callback_url: str | None = None, default_sender: str | None = None
) -> NewClient:
    secret = new_secret()
    rows = await fetch(
        pool,
        "INSERT INTO clients (name, callback_url, webhook_secret, default_sender) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (name, callback_url, secret, default_sender),
    )
    client = Client(rows[0][0], name, callback_url, default_sender)
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
        "SELECT c.id, c.name, c.callback_url, c.default_sender FROM api_keys k "
        "JOIN clients c ON c.id = k.client_id WHERE k.key_hash = %s AND k.revoked_at IS NULL",
        (hash_key(api_key),),
    )
    return Client(*rows[0]) if rows else None


async def by_name(pool: aiopg.Pool, name: str) -> Client | None:
    rows = await fetch(
        pool, "SELECT id, name, callback_url, default_sender FROM clients WHERE name = %s", (name,)
    )
    return Client(*rows[0]) if rows else None
