"""Staff users, their sessions and the API tokens of systems (tables in schema ``admin``)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiopg

from admin.core.roles import Role
from gateway.adapters.pg import execute, fetch

TOKEN_PREFIX = "sat_"


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    role: Role


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


@dataclass(frozen=True)
class Token:
    id: int
    name: str


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _user(row: Sequence[Any]) -> User:
    return User(int(row[0]), row[1], row[2], Role(row[3]))


async def create_user(pool: aiopg.Pool, email: str, name: str, role: Role, pw_hash: str) -> User:
    rows = await fetch(
        pool,
        "INSERT INTO admin.users (email, name, role, password_hash) VALUES (%s, %s, %s, %s) "
        "RETURNING id, email, name, role",
        (email, name, role.value, pw_hash),
    )
    return _user(rows[0])


async def credentials(pool: aiopg.Pool, email: str) -> tuple[User, str] | None:
    """The active user with this e-mail and their password hash."""
    rows = await fetch(
        pool,
        "SELECT id, email, name, role, password_hash FROM admin.users "
        "WHERE lower(email) = lower(%s) AND active",
        (email,),
    )
    return (_user(rows[0]), rows[0][4]) if rows else None


async def set_password(pool: aiopg.Pool, user_id: int, pw_hash: str) -> None:
    await execute(
        pool, "UPDATE admin.users SET password_hash = %s WHERE id = %s", (pw_hash, user_id)
    )


async def list_users(pool: aiopg.Pool) -> list[dict[str, Any]]:
    rows = await fetch(
        pool,
        "SELECT id, email, name, role, active, created_at, last_login_at FROM admin.users "
        "ORDER BY id",
    )
    keys = ("id", "email", "name", "role", "active", "created_at", "last_login_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


async def set_active(pool: aiopg.Pool, user_id: int, active: bool) -> None:
    await execute(pool, "UPDATE admin.users SET active = %s WHERE id = %s", (active, user_id))
    if not active:
        await execute(pool, "DELETE FROM admin.sessions WHERE user_id = %s", (user_id,))


async def open_session(pool: aiopg.Pool, user: User, ip: str, ttl: timedelta) -> tuple[str, str]:
    """A new session: returns (token for the cookie, its CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await execute(
        pool,
        "INSERT INTO admin.sessions (token_hash, user_id, csrf, ip, expires_at) "
        "VALUES (%s, %s, %s, %s, now() + %s)",
        (digest(token), user.id, csrf, ip, ttl),
    )
    await execute(pool, "UPDATE admin.users SET last_login_at = now() WHERE id = %s", (user.id,))
    return token, csrf


async def session(pool: aiopg.Pool, token: str) -> Session | None:
    rows = await fetch(
        pool,
        "SELECT u.id, u.email, u.name, u.role, s.csrf FROM admin.sessions s "
        "JOIN admin.users u ON u.id = s.user_id "
        "WHERE s.token_hash = %s AND s.expires_at > now() AND u.active",
        (digest(token),),
    )
    return Session(_user(rows[0]), rows[0][4]) if rows else None


async def close_session(pool: aiopg.Pool, token: str) -> None:
    await execute(pool, "DELETE FROM admin.sessions WHERE token_hash = %s", (digest(token),))


async def note_failure(pool: aiopg.Pool, keys: Sequence[str]) -> None:
    await execute(
        pool, "INSERT INTO admin.login_failures (key) SELECT unnest(%s::text[])", (list(keys),)
    )


async def recent_failures(pool: aiopg.Pool, keys: Sequence[str], window: timedelta) -> int:
    """The most failures any one of ``keys`` has had within ``window``."""
    rows = await fetch(
        pool,
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM admin.login_failures "
        "WHERE key = ANY(%s) AND at > now() - %s GROUP BY key) f",
        (list(keys), window),
    )
    return int(rows[0][0])


async def create_token(pool: aiopg.Pool, name: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await execute(
        pool,
        "INSERT INTO admin.api_tokens (name, token_hash, prefix) VALUES (%s, %s, %s)",
        (name, digest(token), token[:10]),
    )
    return token


async def token(pool: aiopg.Pool, presented: str) -> Token | None:
    rows = await fetch(
        pool,
        "SELECT id, name FROM admin.api_tokens WHERE token_hash = %s AND revoked_at IS NULL",
        (digest(presented),),
    )
    return Token(int(rows[0][0]), rows[0][1]) if rows else None


async def revoke_token(pool: aiopg.Pool, prefix: str) -> int:
    return await execute(
        pool,
        "UPDATE admin.api_tokens SET revoked_at = now() WHERE prefix = %s AND revoked_at IS NULL",
        (prefix,),
    )
