"""``smsgw key-add | key-list | key-revoke | client-senders``: API keys and sender ids.

Each command opens its own pool, as ``admin_tasks`` does. A key is printed once, when
it is made; afterwards only its prefix is ever shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiopg

from gateway.adapters import client_store, pg
from gateway.adapters.client_store import Client
from gateway.core.access import parse_scopes
from gateway.core.ssrf import parse_networks, url_refusal
from gateway.core.validation import SENDER_RULE, valid_sender_id
from gateway.settings import Settings
from smsgw.runner import server_urls

T = TypeVar("T")
SettingsOf = Callable[[argparse.Namespace], Settings]


async def _with_pool(settings: Settings, work: Callable[[aiopg.Pool], Awaitable[T]]) -> T:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            return await work(pool)


async def _client_named(pool: aiopg.Pool, name: str) -> Client:
    client = await client_store.by_name(pool, name)
    if client is None:
        raise SystemExit(f"no client named {name!r}")
    return client


async def add_key(pool: aiopg.Pool, name: str, scopes: list[str]) -> dict[str, Any]:
    client = await _client_named(pool, name)
    key = await client_store.add_key(pool, client.id, parse_scopes(scopes))
    return {"client": name, "api_key": key, "prefix": key[:10], "scopes": sorted(scopes)}


async def list_keys(pool: aiopg.Pool, name: str) -> list[dict[str, Any]]:
    client = await _client_named(pool, name)
    return [
        {
            "prefix": k.prefix,
            "scopes": list(k.scopes),
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at and k.revoked_at.isoformat(),
        }
        for k in await client_store.keys_of(pool, client.id)
    ]


async def revoke_key(pool: aiopg.Pool, prefix: str) -> dict[str, Any]:
    live = await client_store.revoke(pool, prefix)
    if live != 1:
        why = "no live key has" if live == 0 else f"{live} live keys share"
        raise SystemExit(f"{why} the prefix {prefix!r}: nothing revoked")
    return {"revoked": prefix, "effective_within_s": 1}


async def set_senders(pool: aiopg.Pool, name: str, senders: list[str] | None) -> dict[str, Any]:
    client = await _client_named(pool, name)
    for sender in senders or ():
        _check_sender(sender)
    await client_store.set_senders(pool, client.id, senders)
    return {"client": name, "default_sender": client.default_sender, "allowed_senders": senders}


def _check_sender(sender: str) -> None:
    if not valid_sender_id(sender):
        raise SystemExit(f"{sender!r}: {SENDER_RULE}")


def check_callback_url(settings: Settings, url: str | None) -> None:
    """A client's callback URL meets the same SSRF rule as a message's, when it is set."""
    refusal = url and url_refusal(url, parse_networks(settings.webhooks.allow_networks))
    if refusal:
        raise SystemExit(f"--callback-url: must be an http(s) URL to a public address: {refusal}")


def register(sub: Any, settings_of: SettingsOf) -> None:
    """Add the commands to the ``smsgw`` parser's subcommands."""

    def command(work: Callable[[aiopg.Pool, argparse.Namespace], Awaitable[Any]]) -> Any:
        def run(args: argparse.Namespace) -> int:
            settings = settings_of(args)
            result = asyncio.run(_with_pool(settings, lambda pool: work(pool, args)))
            print(json.dumps(result, indent=2))
            return 0

        return run

    add = sub.add_parser("key-add", help="make another API key for a client; prints it once")
    add.add_argument("client")
    add.add_argument(
        "--scope",
        action="append",
        choices=["send", "read", "admin", "operator"],
        help="repeat; default send, read, admin (operator only when named)",
    )
    add.set_defaults(
        func=command(lambda p, a: add_key(p, a.client, a.scope or ["send", "read", "admin"]))
    )
    keys = sub.add_parser("key-list", help="a client's keys: prefix, scopes, created, revoked")
    keys.add_argument("client")
    keys.set_defaults(func=command(lambda p, a: list_keys(p, a.client)))
    revoke = sub.add_parser("key-revoke", help="revoke a key by its prefix (every process, ≤1 s)")
    revoke.add_argument("prefix")
    revoke.set_defaults(func=command(lambda p, a: revoke_key(p, a.prefix)))
    senders = sub.add_parser(
        "client-senders", help="the sender ids a client may use (besides its default)"
    )
    senders.add_argument("client")
    senders.add_argument("names", nargs="*", help="none: only the default sender")
    senders.add_argument("--any", action="store_true", help="lift the restriction")
    senders.set_defaults(
        func=command(lambda p, a: set_senders(p, a.client, None if a.any else list(a.names)))
    )
