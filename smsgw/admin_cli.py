"""``smsgw admin create-user | create-token | revoke-token``: the admin's first user and the
API tokens of the systems that feed it (the CRM's contacts, conversions).

A password comes from ``SMSGW_ADMIN_PASSWORD`` or a prompt, never from the command line
(where it would stay in the shell's history and the process list). A token is printed once.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiopg

from admin.adapters import db, user_store
from admin.core import passwords
from admin.core.roles import Role
from gateway.adapters import pg
from gateway.settings import Settings
from smsgw.runner import server_urls

SettingsOf = Callable[[argparse.Namespace], Settings]


async def _with_pool(settings: Settings, work: Callable[[aiopg.Pool], Awaitable[Any]]) -> Any:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            await db.migrate(pool)
            return await work(pool)


async def create_user(
    pool: aiopg.Pool, email: str, name: str, role: Role, password: str
) -> dict[str, Any]:
    weak = passwords.weakness(password)
    if weak:
        raise SystemExit(f"password: {weak}")
    if await user_store.credentials(pool, email) is not None:
        raise SystemExit(f"a user with the e-mail {email!r} exists")
    user = await user_store.create_user(pool, email, name, role, passwords.hash_password(password))
    return {"id": user.id, "email": user.email, "role": user.role.value}


async def create_token(pool: aiopg.Pool, name: str) -> dict[str, Any]:
    return {"name": name, "token": await user_store.create_token(pool, name)}


async def revoke_token(pool: aiopg.Pool, prefix: str) -> dict[str, Any]:
    return {"revoked": await user_store.revoke_token(pool, prefix)}


def _password() -> str:
    found = os.environ.get("SMSGW_ADMIN_PASSWORD")
    if found:
        return found
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("the passwords differ")
    return first


def register(sub: Any, settings_of: SettingsOf) -> None:
    """Add ``smsgw admin …`` to the ``smsgw`` parser's subcommands."""

    def command(work: Callable[[aiopg.Pool, argparse.Namespace], Awaitable[Any]]) -> Any:
        def run(args: argparse.Namespace) -> int:
            result = asyncio.run(_with_pool(settings_of(args), lambda pool: work(pool, args)))
            print(json.dumps(result, indent=2))
            return 0

        return run

    admin = sub.add_parser("admin", help="the admin UI's users and API tokens")
    verbs = admin.add_subparsers(dest="admin_command", required=True)
    user = verbs.add_parser("create-user", help="a staff user (the first one: --role admin)")
    user.add_argument("email")
    user.add_argument("--role", choices=[r.value for r in Role], default=Role.admin.value)
    user.add_argument("--name", default="")
    user.set_defaults(
        func=command(lambda p, a: create_user(p, a.email, a.name, Role(a.role), _password()))
    )
    token = verbs.add_parser("create-token", help="an API token for a system; printed once")
    token.add_argument("name", help="e.g. crm, shop-conversions")
    token.set_defaults(func=command(lambda p, a: create_token(p, a.name)))
    revoke = verbs.add_parser("revoke-token", help="revoke a token by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(func=command(lambda p, a: revoke_token(p, a.prefix)))
