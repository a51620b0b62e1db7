"""The gateway's operations API for a consumer (the admin's providers page): live pool
state, delivery per provider, the shared routing override, providers off and on.

Needs a key with the ``admin`` scope (pool state, delivery) and ``operator`` (routing).
Interactive: no retries; a refusal raises ``RequestRefused`` naming the gateway's field,
an unreachable gateway ``GatewayUnavailable`` (both from ``gateway.client``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp

from gateway.client import GatewayUnavailable, RequestRefused


class GatewayAdminClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}

    @classmethod
    @asynccontextmanager
    async def open(cls, base_url: str, api_key: str) -> AsyncIterator[GatewayAdminClient]:
        timeout = aiohttp.ClientTimeout(total=10, connect=3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield cls(session, base_url, api_key)

    async def providers(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/v1/providers"))["providers"])

    async def delivery(self, window_s: int = 900) -> dict[str, dict[str, Any]]:
        found = await self._call("GET", f"/v1/providers/delivery?window_s={int(window_s)}")
        return dict(found["providers"])

    async def routing(self) -> dict[str, Any]:
        return await self._call("GET", "/v1/admin/routing")

    async def put_routing(
        self, document: dict[str, Any] | None, version: int | None, by: str
    ) -> dict[str, Any]:
        body = {"document": document, "version": version, "by": by}
        return await self._call("PUT", "/v1/admin/routing", body)

    async def set_disabled(self, provider: str, disabled: bool, by: str) -> dict[str, Any]:
        action = "disable" if disabled else "enable"
        path = f"/v1/admin/providers/{_segment(provider)}/{action}"
        return await self._call("POST", path, {"by": by})

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, self._base + path, json=body, headers=self._headers
            ) as reply:
                found = await reply.json(content_type=None)
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise GatewayUnavailable(f"the gateway did not answer: {exc!r}") from None
        if status >= 400:
            raise _refused(status, found)
        return dict(found)


def _segment(name: str) -> str:
    return quote(name, safe="")


def _refused(status: int, reply: Any) -> RequestRefused | GatewayUnavailable:
    error = reply.get("error") if isinstance(reply, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message", f"the gateway answered {status}"))
    code = str(error.get("code", ""))
    if status in (429, 502, 503, 504):
        return GatewayUnavailable(message, status, code)
    return RequestRefused(message, status, code, error.get("field"))
