"""Webhook URLs and addresses that must not be reached (gateway/core/ssrf.py): pure."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.ssrf import (
    address_refusal,
    host_address,
    legacy_ipv4,
    parse_networks,
    url_refusal,
)

BLOCKED = parse_networks(
    ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
     "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")
)  # fmt: skip
LOOPBACK = parse_networks(("127.0.0.0/8",))

blocked_v4 = st.sampled_from(BLOCKED).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
        ipaddress.IPv4Address
    )
)
any_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


def spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Hosts that ``inet_aton`` or an IPv6 parser reads as ``ip``."""
    n, (a, b, c, d) = int(ip), ip.packed
    return [
        str(ip),
        str(n),
        hex(n),
        "0" + oct(n)[2:],
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"0x{a:x}.0{b:o}.{c}.0x{d:02x}",
        f"[::ffff:{ip}]",
        f"[::ffff:{(a << 8) | b:x}:{(c << 8) | d:x}]",
        f"[64:ff9b::{ip}]",
        f"{ip}.",
    ]


@given(blocked_v4, st.integers(0, 10))
def test_every_spelling_of_a_private_address_is_refused(ip: ipaddress.IPv4Address, i: int) -> None:
    host = spellings(ip)[i]
    assert url_refusal(f"http://{host}:8080/hook") is not None, host


@given(any_v4, st.integers(0, 10))
def test_spellings_mean_the_same_address(ip: ipaddress.IPv4Address, i: int) -> None:
    host = spellings(ip)[i]
    assert url_refusal(f"http://{host}/") == address_refusal(ip), host


@given(any_v4)
def test_an_address_is_refused_unless_public_or_allowed(ip: ipaddress.IPv4Address) -> None:
    refused = address_refusal(ip)
    assert (refused is None) == (ip.is_global and not ip.is_multicast)
    assert address_refusal(ip, [ipaddress.IPv4Network(f"{ip}/32")]) is None


@given(blocked_v4)
def test_allowing_a_network_admits_its_addresses_only(ip: ipaddress.IPv4Address) -> None:
    allowed = address_refusal(ip, LOOPBACK) is None
    assert allowed == (ip in LOOPBACK[0])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "http(s)"),
        ("http:///path", "http(s)"),
        ("http://user:pw@example.com/", "user name"),
        ("http://example.com@127.0.0.1/", "user name"),
        ("http://example.com\\@127.0.0.1/", "user name"),
        ("http://example.com:0/", "port"),
        ("http://example.com:99999/", "valid URL"),
        ("http://[::1]/", "loopback"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0/", "reserved"),
        ("http://localhost:8080/", "local host name"),
        ("http://api.localhost/", "local host name"),
        ("http://1.2.3.4.5/", "numeric host"),
        ("http://0x7f.0x1g/", "numeric host"),
    ],
)
def test_refusals_say_why(url: str, reason: str) -> None:
    refusal = url_refusal(url)
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://8.8.8.8:8080/x",
        "https://[2001:4860::8888]/",
        "http://1password.com/",
    ],
)
def test_public_urls_pass(url: str) -> None:
    assert url_refusal(url) is None


def test_loopback_names_and_addresses_pass_when_allowed() -> None:
    assert url_refusal("http://127.0.0.1:9000/hook", LOOPBACK) is None
    assert url_refusal("http://localhost:9000/hook", LOOPBACK) is None
    assert url_refusal("http://10.0.0.1/", LOOPBACK) is not None


def test_legacy_forms_outside_inet_aton_are_not_addresses() -> None:
    assert legacy_ipv4("256.1.1.1") is None
    assert legacy_ipv4("1.2.3.256") is None
    assert legacy_ipv4("08.1.1.1") is None  # 8 is not an octal digit
    assert host_address("example.com") is None


def test_bad_allow_entries_are_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        parse_networks(("10.0.0.0/33",))
