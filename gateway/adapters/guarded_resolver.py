"""The webhook sender's resolver: a name is refused if any address it resolves to is
one a callback must not reach (``gateway/core/ssrf.py``).

The URL was checked when it was accepted, but a name may resolve elsewhere by the time
the callback is sent (DNS rebinding: public at accept, 127.0.0.1 at send). The sender
connects to exactly the addresses its resolver returns, so checking them here checks
what is connected to. Literal addresses skip resolvers: the sender checks the URL
itself (``url_refusal``) and follows no redirects.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway.core.ssrf import Networks, address_refusal


class RefusedTarget(OSError):
    """A callback's host resolves to an address it must not reach."""


class GuardedResolver(AbstractResolver):
    def __init__(self, allow: Networks, inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for item in found:
            refusal = address_refusal(ipaddress.ip_address(item["host"]), self._allow)
            if refusal is not None:
                raise RefusedTarget(f"{host} resolves to {refusal}")
        return found

    async def close(self) -> None:
        await self._inner.close()
