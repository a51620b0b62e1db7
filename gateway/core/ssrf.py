"""Webhook URLs that cannot be turned against our own network (SSRF). Pure: no IO.

A callback URL is the client's to choose, and the gateway POSTs to it from inside our
network, so it must not reach loopback, private, link-local (cloud metadata at
169.254.169.254), multicast or reserved addresses, unless the operator allows a
network in ``[webhooks] allow_networks``. Checked twice:

* at accept (``url_refusal``): the scheme, no userinfo, and a literal address in any
  spelling ``inet_aton`` accepts (``2130706433``, ``0x7f.1``, ``017700000001``) or
  IPv6 forms that carry an IPv4 address (``::ffff:127.0.0.1``, NAT64);
* at send (``address_refusal`` on every address a name resolves to, in the webhook
  sender's resolver), since DNS may answer differently by then (rebinding).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Networks = tuple[Network, ...]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


@functools.cache
def parse_networks(texts: tuple[str, ...]) -> Networks:
    """Config strings → networks; raises ValueError naming the bad one."""
    found = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not a network: {text!r} (e.g. 10.0.0.0/8, ::1/128)") from None
    return tuple(found)


def _embedded_v4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # ::a.b.c.d (deprecated form)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_refusal(ip: IPAddress, allow: Iterable[Network] = ()) -> str | None:
    """Why the gateway must not connect to ``ip``; None if it may."""
    for candidate in {ip, _embedded_v4(ip)}:
        if any(candidate.version == net.version and candidate in net for net in allow):
            return None
    target = _embedded_v4(ip)
    if target.is_loopback:
        return "a loopback address"
    if target.is_link_local:
        return "a link-local address"
    if target.is_multicast:
        return "a multicast address"
    if target.is_unspecified or target.is_reserved:
        return "a reserved address"
    if target.is_private or not target.is_global:
        return "a private address"
    return None


def _inet_aton_part(text: str) -> int:
    if text[:2].lower() == "0x":
        return int(text[2:] or "0", 16)
    if len(text) > 1 and text[0] == "0":
        return int(text[1:], 8)
    return int(text, 10)


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address ``inet_aton`` (and so many HTTP clients) reads in ``host``: one to four
    parts, each decimal, octal (leading 0) or hex (0x), the last filling what is left."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    try:
        numbers = [_inet_aton_part(p) for p in parts]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for index, byte in enumerate(head):
        value |= byte << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def host_address(host: str) -> IPAddress | None:
    """The literal address in a URL's host, in any spelling; None for a name."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return legacy_ipv4(host) if host[:1].isdigit() else None


def url_refusal(url: str, allow: Iterable[Network] = ()) -> str | None:
    """Why ``url`` may not be a webhook target; None if it may (names are checked again,
    resolved, when the webhook is sent)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http(s) URL"
    if "@" in parts.netloc or "\\" in url or any(c.isspace() for c in url):
        return "no user name, password, backslash or space in the URL"
    if port == 0:
        return "not a valid port"
    return host_refusal(parts.hostname, tuple(allow))


def host_refusal(host: str, allow: tuple[Network, ...] = ()) -> str | None:
    address = host_address(host)
    if address is not None:
        return address_refusal(address, allow)
    if _all_numeric(host):
        return "a numeric host that is not an address"
    name = host.rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        loopback = ipaddress.IPv4Address("127.0.0.1")
        return address_refusal(loopback, allow) and "a local host name"
    return None


def _all_numeric(host: str) -> bool:
    """Dotted parts that each look like a number (``1.2.3.4.5``, ``0x7f.0x1g``): hosts
    that no resolver should see as a name."""
    return all(p[:1].isdigit() for p in host.rstrip(".").split("."))
