"""Short links: find the URLs of a template, give each recipient its own ``{base}/l/{code}``.

Theory of operation. Links are found in the *template* text, before rendering, so a value
from a contact (a name that looks like a domain) is never taken for a link. A URL is
``http://`` or ``https://`` or ``www.`` up to the next space, less trailing punctuation
(a sentence's full stop, a closing bracket or quote that opened outside the URL). A URL may
hold placeholders (``?u={custom.id}``): the runner renders it per recipient with each value
URL-quoted, and stores that as the code's target. Codes come from an injected source of
random bytes (``secrets.token_bytes`` in production), URL-safe base64, at least 7 characters
(7 characters is 42 bits: guessing one among a million live codes takes ~4·10⁶ tries).
``is_safe_target`` is the gate for what may be stored, so ``/l/{code}`` can only redirect
to an http(s) URL that a template named. Pure.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from admin.core.templates import InvalidTemplate, parse_template, render

MIN_CODE_LENGTH = 7
CODE_LENGTH = 8  # 48 bits
CODE_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
MAX_URL_LENGTH = 2000

# Link-preview fetchers (iOS Messages sends "facebookexternalhit … Twitterbot" for an SMS
# link), messengers, crawlers and scripts: they follow links nobody clicked.
_BOTS = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|whatsapp|telegram|viber|vkshare|"
    r"skypeuri|bitlybot|lighthouse|curl|wget|python|aiohttp|httpx|go-http|java/|"
    r"okhttp|libwww|scrapy|monitor|pingdom|uptime",
    re.IGNORECASE,
)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"«»]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\""
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True, slots=True)
class Link:
    start: int
    end: int
    url: str  # as written in the template (may hold placeholders)


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One code to store: its target and whom it was sent to."""

    code: str
    url: str
    campaign_id: int | None = None
    contact_id: int | None = None
    message_id: int | None = None


def find_spans(text: str) -> tuple[Link, ...]:
    links = []
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if "." in url.split("//", 1)[-1]:
            links.append(Link(match.start(), match.start() + len(url), url))
    return tuple(links)


def find_links(text: str) -> tuple[str, ...]:
    return tuple(link.url for link in find_spans(text))


def rewrite(text: str, codes: Sequence[str], base_url: str) -> str:
    """``text`` with its i-th link replaced by ``{base_url}/l/{codes[i]}``."""
    return _rewrite(text, find_spans(text), codes, base_url)


def _rewrite(text: str, spans: Sequence[Link], codes: Sequence[str], base_url: str) -> str:
    if len(codes) != len(spans):
        raise ValueError(f"{len(spans)} links in the text, {len(codes)} codes given")
    out, pos = [], 0
    for link, code in zip(spans, codes, strict=True):
        out += [text[pos : link.start], short_url(base_url, code)]
        pos = link.end
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Personal:
    """One recipient's template text (short links in place) and each code's target."""

    text: str
    links: tuple[tuple[str, str], ...]  # (code, url)


def personalise(
    text: str,
    fields: Mapping[str, Any],
    defaults: Mapping[str, str],
    codes: Sequence[str],
    base_url: str,
) -> Personal:
    """Give one recipient its short links: the template text to render, and the URLs (values
    URL-quoted, so a contact field cannot move a link to another host) to store."""
    spans = find_spans(text)
    urls = [_personal_url(s.url, fields, defaults) for s in spans]
    return Personal(_rewrite(text, spans, codes, base_url), tuple(zip(codes, urls, strict=True)))


def check_links(text: str, defaults: Mapping[str, str]) -> None:
    """Refuse a tracked link whose host a placeholder would choose, or that is no http(s)
    URL even with its placeholders empty: every stored target then has the template's host."""
    for link in find_spans(text):
        if "{" in urlsplit(target(link.url)).netloc:
            raise InvalidTemplate(f"a placeholder may not choose the host of {link.url}", "")
        if not is_safe_target(_bare_url(link.url, defaults)):
            raise InvalidTemplate(f"{link.url} is not an http(s) link", "")


def short_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/l/{code}"


def sized_like(text: str, base_url: str, length: int = CODE_LENGTH) -> str:
    """The text as a recipient gets it, with placeholder codes: what a preview measures.
    The filler is "x" because a real code's characters each weigh one septet too."""
    return rewrite(text, ["x" * length] * len(find_spans(text)), base_url)


def new_code(random_bytes: Callable[[int], bytes], length: int = CODE_LENGTH) -> str:
    if length < MIN_CODE_LENGTH:
        raise ValueError(f"a code has at least {MIN_CODE_LENGTH} characters")
    raw = base64.urlsafe_b64encode(random_bytes(-(-length * 3 // 4))).decode("ascii")
    return raw.rstrip("=")[:length]


def is_code(code: str) -> bool:
    return MIN_CODE_LENGTH <= len(code) <= 64 and CODE_ALPHABET.fullmatch(code) is not None


def target(url: str) -> str:
    """The URL a link redirects to: ``www.`` links get their scheme."""
    return url if "://" in url else "https://" + url


def is_safe_target(url: str) -> bool:
    """An absolute http(s) URL with a host, no credentials, no control characters."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) < 0x20 or c == "\x7f" for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc


def counts_as_click(method: str, user_agent: str) -> bool:
    """A person's click: a GET from something that names itself and is not a known fetcher.
    HEAD (a link checker) and bots are still redirected, but not counted."""
    return method == "GET" and bool(user_agent.strip()) and not _BOTS.search(user_agent)


def ip_hash(ip: str, code: str) -> str:
    """A click's address, unrecoverable: the /24 (IPv4) or /48 (IPv6) network only, hashed
    with the code, so the same visitor counts once per link but cannot be followed across
    links, and even a brute-forced hash names a network, not a subscriber."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return hashlib.sha256(f"{code}|{network}".encode()).hexdigest()[:32]


# A campaign renders the same few URLs for every recipient: parse each once.
_url_template = functools.lru_cache(maxsize=256)(parse_template)


def _personal_url(url: str, fields: Mapping[str, Any], defaults: Mapping[str, str]) -> str:
    """The recipient's URL; if their values make it unusable (too long), the URL with the
    defaults, which ``check_links`` proved safe."""
    found = target(render(_url_template(url), fields, defaults, _quote))
    return found if is_safe_target(found) else _bare_url(url, defaults)


def _bare_url(url: str, defaults: Mapping[str, str]) -> str:
    return target(render(_url_template(url), {}, defaults, _quote))


def _quote(value: str) -> str:
    return quote(value, safe="")


def _trim(url: str) -> str:
    """Drop trailing punctuation and closing brackets whose opener is not in the URL."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _PAIRS and url.count(_PAIRS[last]) < url.count(last)):
            url = url[:-1]
        else:
            return url
    return url
