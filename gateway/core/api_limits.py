"""Request limits at the API, per API key and per client IP: the pure part.

The limits themselves are GCRA buckets in Redis shared by every process
(``gateway/adapters/api_limiter.py``). This module decides who a request counts
against (the client's address behind trusted proxies; IPv6 by /64, since one host
holds a whole /64) and keeps a process's local grants: tokens taken from Redis a few
at a time, so that most requests cost no round trip, and refusals remembered until
their Retry-After, so that a flood costs none at all.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from gateway.core.ssrf import IPAddress, Networks, parse_networks

GRANT_TTL_S = 0.1  # a token unused this long is dropped: a stale grant would be a burst
GRANT_SHARE = 0.01  # a grant is ~10 ms of the rate


@dataclass(frozen=True)
class ApiLimitSettings:
    """``[api_limits]``: requests per second and burst, per API key and per client IP."""

    enabled: bool = True
    key_rps: float = 1000.0
    key_burst: float = 2000.0
    ip_rps: float = 2000.0
    ip_burst: float = 4000.0
    exempt: tuple[str, ...] = ()  # networks not limited per IP (their keys still are)
    trusted_proxies: tuple[str, ...] = ()  # X-Forwarded-For is believed from these only

    def __post_init__(self) -> None:
        if min(self.key_rps, self.key_burst, self.ip_rps, self.ip_burst) <= 0:
            raise ValueError("key_rps, key_burst, ip_rps and ip_burst must be positive")
        parse_networks(self.exempt)
        parse_networks(self.trusted_proxies)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str:
    """Who sent the request: the peer, or, when the peer is a trusted proxy, the
    right-most address in X-Forwarded-For that is not one (those left of it are the
    client's to write, so they are never believed)."""
    current = _address(peer or "")
    if current is None:
        return peer or "unknown"
    hops = (forwarded_for or "").split(",")
    while _within(current, trusted) and hops:
        previous = _address(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)


def _within(ip: IPAddress, networks: Networks) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def ip_bucket(address: str) -> str:
    """The bucket an address counts against: IPv4 itself, IPv6 its /64."""
    ip = _address(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def is_exempt(address: str, exempt: Networks) -> bool:
    ip = _address(address)
    return ip is not None and _within(ip, exempt)


def grant_size(rate: float) -> int:
    return max(1, round(rate * GRANT_SHARE))


class Verdict(Enum):
    TAKEN = "taken"  # a local token was used
    REFUSED = "refused"  # refused until a known time: no need to ask Redis
    ASK = "ask"  # no local tokens: ask Redis for a grant


class LocalGrants:
    """One process's unused tokens and remembered refusals, per bucket (bounded)."""

    def __init__(self, max_buckets: int = 50_000) -> None:
        self._tokens: dict[str, tuple[int, float]] = {}  # bucket → (tokens, granted at)
        self._refused: dict[str, float] = {}  # bucket → refused until
        self._max = max_buckets

    def __len__(self) -> int:
        return len(self._tokens) + len(self._refused)

    def check(self, bucket: str, now: float) -> Verdict:
        until = self._refused.get(bucket)
        if until is not None and now < until:
            return Verdict.REFUSED
        tokens, at = self._tokens.get(bucket, (0, 0.0))
        if tokens > 0 and now - at <= GRANT_TTL_S:
            self._tokens[bucket] = (tokens - 1, at)
            return Verdict.TAKEN
        return Verdict.ASK

    def refused_for(self, bucket: str, now: float) -> float:
        return max(0.0, self._refused.get(bucket, now) - now)

    def granted(self, bucket: str, tokens: int, wait_s: float, now: float) -> bool:
        """Record Redis's answer to ASK; True if this request may go (it used a token)."""
        self._trim(now)
        if tokens <= 0:
            self._refused[bucket] = now + wait_s
            return False
        self._refused.pop(bucket, None)
        self._tokens[bucket] = (tokens - 1, now)
        return True

    def _trim(self, now: float) -> None:
        if len(self._tokens) + len(self._refused) < self._max:
            return
        self._tokens = {k: v for k, v in self._tokens.items() if now - v[1] <= GRANT_TTL_S}
        self._refused = {k: t for k, t in self._refused.items() if t > now}
        if len(self._tokens) + len(self._refused) >= self._max:  # a flood of new buckets
            self._tokens.clear()
