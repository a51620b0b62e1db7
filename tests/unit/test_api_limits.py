"""Who a request counts against, and a process's local grants (gateway/core/api_limits.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config_schema import ConfigError, build
from gateway.core.api_limits import (
    GRANT_TTL_S,
    ApiLimitSettings,
    LocalGrants,
    Verdict,
    client_address,
    grant_size,
    ip_bucket,
    is_exempt,
)
from gateway.core.ssrf import parse_networks

PROXIES = parse_networks(("10.0.0.0/8",))
v4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
public_v4 = st.integers(0x01000000, 0x09FFFFFF).map(lambda n: str(ipaddress.IPv4Address(n)))


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("203.0.113.9", "1.2.3.4", ()) == "203.0.113.9"
    assert client_address("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"
    assert client_address("10.0.0.5", "1.2.3.4", PROXIES) == "1.2.3.4"


@given(st.lists(v4, max_size=4), public_v4, st.lists(st.just("10.1.2.3"), max_size=3))
def test_the_right_most_untrusted_hop_is_the_client(
    forged: list[str], client: str, proxies: list[str]
) -> None:
    """Whatever the client writes into X-Forwarded-For, it is counted as itself."""
    header = ", ".join([*forged, client, *proxies])
    assert client_address("10.0.0.1", header, PROXIES) == client


def test_garbage_in_forwarded_for_stops_at_the_last_trusted_hop() -> None:
    assert client_address("10.0.0.1", "1.2.3.4, bogus", PROXIES) == "10.0.0.1"
    assert client_address(None, None, PROXIES) == "unknown"


@given(st.integers(0, 2**128 - 1))
def test_ipv6_counts_per_64(n: int) -> None:
    ip = ipaddress.IPv6Address(n)
    neighbour = ipaddress.IPv6Address(n ^ 0xFFFF)  # same /64
    if ip.ipv4_mapped is None and neighbour.ipv4_mapped is None:
        assert ip_bucket(str(ip)) == ip_bucket(str(neighbour))
        assert ip_bucket(str(ip)).endswith("/64")


def test_ipv4_mapped_counts_as_ipv4_and_exempt_networks_match() -> None:
    assert ip_bucket("::ffff:1.2.3.4") == "1.2.3.4"
    assert is_exempt("10.9.9.9", PROXIES) and not is_exempt("11.0.0.1", PROXIES)
    assert not is_exempt("unknown", PROXIES)


@given(st.integers(1, 50), st.floats(0, GRANT_TTL_S))
def test_a_grant_admits_exactly_its_tokens(tokens: int, later: float) -> None:
    grants = LocalGrants()
    assert grants.check("k", 0.0) is Verdict.ASK
    assert grants.granted("k", tokens, 0.0, 0.0)  # the asking request used one
    taken = sum(grants.check("k", later) is Verdict.TAKEN for _ in range(tokens + 5))
    assert taken == tokens - 1
    assert grants.check("k", later) is Verdict.ASK


def test_stale_tokens_are_dropped() -> None:
    grants = LocalGrants()
    grants.granted("k", 10, 0.0, 0.0)
    assert grants.check("k", GRANT_TTL_S * 2) is Verdict.ASK


@given(st.floats(0.001, 30), st.floats(0, 60))
def test_a_refusal_is_remembered_until_its_retry_after(wait: float, later: float) -> None:
    grants = LocalGrants()
    assert not grants.granted("k", 0, wait, 0.0)
    verdict = grants.check("k", later)
    assert verdict is (Verdict.REFUSED if later < wait else Verdict.ASK)
    if later < wait:
        assert grants.refused_for("k", later) == pytest.approx(wait - later)


def test_the_bookkeeping_is_bounded() -> None:
    grants = LocalGrants(max_buckets=100)
    for i in range(1000):
        grants.granted(f"k{i}", 5, 0.0, 0.0)
    assert len(grants) <= 100


@given(st.floats(0.01, 1e6))
def test_grants_are_small(rate: float) -> None:
    assert 1 <= grant_size(rate) <= max(1, rate * 0.01 + 1)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="positive"):
        build(ApiLimitSettings, {"key_rps": 0}, "api_limits")
    with pytest.raises(ConfigError, match="not a network"):
        build(ApiLimitSettings, {"exempt": ["nope"]}, "api_limits")
    assert build(ApiLimitSettings, {"trusted_proxies": ["10.0.0.0/8"]}, "x").trusted_proxies
