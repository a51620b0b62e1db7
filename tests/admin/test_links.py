"""Short links: finding and rewriting URLs (pure), storing codes, and /l/{code} over TCP."""

from __future__ import annotations

import itertools
import random
import secrets
from typing import TYPE_CHECKING

import aiohttp
import aiopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admin.adapters import link_store
from admin.core.links import (
    LinkRow,
    check_links,
    counts_as_click,
    find_links,
    ip_hash,
    is_code,
    is_safe_target,
    new_code,
    personalise,
    rewrite,
    sized_like,
)
from admin.core.templates import InvalidTemplate, PreviewRequest, preview
from gateway.adapters import pg

if TYPE_CHECKING:
    from tests.admin.conftest import AdminApp

BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"

# --- pure ---------------------------------------------------------------------------------

RELAXED = settings(deadline=None)  # a loaded 2-core machine: no per-example deadline


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("Скидки тут: https://shop.ru/sale.", ("https://shop.ru/sale",)),
        ("(см. www.shop.ru/a) и http://x.ru/b?c=1&d=2!", ("www.shop.ru/a", "http://x.ru/b?c=1&d=2")),
        ("Wiki https://ru.wikipedia.org/wiki/SMS_(связь), ok", ("https://ru.wikipedia.org/wiki/SMS_(связь)",)),
        ("«https://shop.ru/x»", ("https://shop.ru/x",)),
        ("https://shop.ru/p?u={custom.id} now", ("https://shop.ru/p?u={custom.id}",)),
        ("no links: shop.ru, http://, https://localhost", ()),
    ],
)  # fmt: skip
def test_find_links(text: str, urls: tuple[str, ...]) -> None:
    assert find_links(text) == urls


def test_rewrite_keeps_the_rest_of_the_text() -> None:
    text = "A https://a.ru/1, B www.b.ru/2."
    assert rewrite(text, ["AAAAAAA", "BBBBBBB"], "https://s.io/") == (
        "A https://s.io/l/AAAAAAA, B https://s.io/l/BBBBBBB."
    )
    with pytest.raises(ValueError, match="2 links"):
        rewrite(text, ["AAAAAAA"], "https://s.io")


def test_codes_are_url_safe_random_and_at_least_seven() -> None:
    rng = random.Random(5)
    codes = {new_code(rng.randbytes) for _ in range(1000)}
    assert len(codes) == 1000 and all(is_code(c) and len(c) == 8 for c in codes)
    assert len(new_code(secrets.token_bytes, 7)) == 7
    with pytest.raises(ValueError):
        new_code(secrets.token_bytes, 6)
    assert not is_code("short") and not is_code("abc/def/ghi") and not is_code("a" * 65)


def test_personalise_quotes_values_so_a_field_cannot_move_the_host() -> None:
    done = personalise(
        "Ваш заказ: https://shop.ru/o?u={custom.id}",
        {"custom": {"id": "1@evil.com/x?y#z"}},
        {},
        ["Code123"],
        "https://s.io",
    )
    assert done.text == "Ваш заказ: https://s.io/l/Code123"
    assert done.links == (("Code123", "https://shop.ru/o?u=1%40evil.com%2Fx%3Fy%23z"),)
    assert personalise("go www.x.ru", {}, {}, ["c0000de"], "https://s").links[0][1] == (
        "https://www.x.ru"
    )


@pytest.mark.parametrize(
    "text",
    ["Go https://shop.ru{custom.tail}/x", "Go https://{custom.shop}.ru/", "Go www.{custom.s}.ru"],
)
def test_a_placeholder_may_not_choose_the_host(text: str) -> None:
    with pytest.raises(InvalidTemplate, match="host"):
        check_links(text, {})


def test_check_links_accepts_placeholders_in_the_path() -> None:
    check_links("Go https://shop.ru/o/{custom.id}?u={first_name|x}#{last_name}", {})


def test_a_value_too_long_for_a_link_falls_back_to_the_defaults() -> None:
    text = "https://shop.ru/o?u={custom.id|none}"
    done = personalise(text, {"custom": {"id": "я" * 2000}}, {}, ["Code123"], "https://s.io")
    assert done.links == (("Code123", "https://shop.ru/o?u=none"),)


def test_safe_targets_are_http_urls_with_a_host() -> None:
    assert is_safe_target("https://shop.ru/a?b=c")
    for bad in ("javascript:alert(1)", "//evil.com", "https://user:pw@x.ru", "https://", "ftp://x"):
        assert not is_safe_target(bad), bad
    assert not is_safe_target("https://x.ru/\r\nSet-Cookie: a=b")


def test_preview_counts_the_short_link_not_the_long_one() -> None:
    text = "Распродажа! https://shop.example.ru/catalog/winter-sale-2026?utm_source=sms"
    rewrite_links = lambda t: sized_like(t, "https://s.io")  # noqa: E731
    measured = preview(text, PreviewRequest(rewrite=rewrite_links))
    assert measured.text == "Распродажа! https://s.io/l/xxxxxxxx"
    assert (preview(text).parts, measured.parts) == (2, 1)


def test_clicks_counted_only_for_people() -> None:
    assert counts_as_click("GET", BROWSER)
    assert not counts_as_click("HEAD", BROWSER)
    assert not counts_as_click("GET", "")
    ios_preview = "Mozilla/5.0 (compatible) facebookexternalhit/1.1 Facebot Twitterbot/1.0"
    for agent in (ios_preview, "TelegramBot (like TwitterBot)", "curl/8.5.0", "Googlebot/2.1"):
        assert not counts_as_click("GET", agent), agent


def test_ip_hash_keeps_a_network_per_link_only() -> None:
    assert ip_hash("203.0.113.7", "Code123") == ip_hash("203.0.113.200", "Code123")
    assert ip_hash("203.0.113.7", "Code123") != ip_hash("203.0.114.7", "Code123")
    assert ip_hash("203.0.113.7", "Code123") != ip_hash("203.0.113.7", "Other12")
    assert ip_hash("2001:db8:1:2::5", "c") == ip_hash("2001:db8:1:ffff::9", "c")
    assert ip_hash("not an ip", "c") == ""


urls = st.builds(
    lambda host, path: f"https://{host}.ru/{path}",
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9_/-]{0,20}", fullmatch=True),
)
words = st.text(st.sampled_from("абв abc,!\n"), max_size=20)


@RELAXED
@given(st.lists(st.tuples(words, urls), max_size=5), words)
def test_rewrite_replaces_exactly_the_links(pieces: list[tuple[str, str]], tail: str) -> None:
    text = "".join(f"{w} {u} " for w, u in pieces) + tail
    assert find_links(text) == tuple(u for _, u in pieces)
    codes = [f"c{i:06d}" for i in range(len(pieces))]
    assert (
        rewrite(text, codes, "https://s.io")
        == "".join(f"{w} https://s.io/l/{c} " for (w, _), c in zip(pieces, codes, strict=True))
        + tail
    )


# --- store --------------------------------------------------------------------------------


async def test_save_links_in_one_batch_and_resolve(admin_db: aiopg.Pool, admin_clean: None) -> None:
    rows = [LinkRow(f"code{i:04d}", f"https://shop.ru/{i}", 7, i) for i in range(2500)]
    stored = await link_store.save_links(admin_db, rows, lambda: new_code(secrets.token_bytes))
    assert stored == rows
    assert await link_store.resolve(admin_db, "code0042") == "https://shop.ru/42"
    assert await link_store.resolve(admin_db, "nope0000") is None
    count = await pg.fetch(admin_db, "SELECT count(*) FROM admin.links WHERE campaign_id = 7")
    assert count[0][0] == 2500


async def test_a_colliding_code_is_remade_never_overwritten(
    admin_db: aiopg.Pool, admin_clean: None
) -> None:
    first = LinkRow("Taken00", "https://first.ru/", contact_id=1)
    await link_store.save_links(admin_db, [first], lambda: "unused0")
    fresh = (f"Fresh{i:02d}" for i in itertools.count())
    rows = [
        LinkRow("Taken00", "https://second.ru/", contact_id=2),
        LinkRow("Twice00", "https://third.ru/", contact_id=3),
        LinkRow("Twice00", "https://fourth.ru/", contact_id=4),
    ]
    stored = await link_store.save_links(admin_db, rows, lambda: next(fresh))
    assert [r.code for r in stored] == ["Fresh00", "Twice00", "Fresh01"]
    assert [r.url for r in stored] == [r.url for r in rows]
    assert await link_store.resolve(admin_db, "Taken00") == "https://first.ru/"
    assert await link_store.resolve(admin_db, "Fresh01") == "https://fourth.ru/"


async def test_save_links_refuses_an_unsafe_target(admin_db: aiopg.Pool, admin_clean: None) -> None:
    with pytest.raises(ValueError, match="not an http"):
        await link_store.save_links(
            admin_db, [LinkRow("Code123", "javascript:alert(1)")], lambda: "x"
        )


async def test_attach_messages_and_record_click(admin_db: aiopg.Pool, admin_clean: None) -> None:
    rows = [LinkRow(f"code{i:04d}", "https://shop.ru/", 1, i) for i in range(3)]
    await link_store.save_links(admin_db, rows, lambda: "unused0")
    assert await link_store.attach_messages(admin_db, ["code0001", "code0002"], [501, 502]) == 2
    assert await link_store.record_click(admin_db, "code0001", "h", "UA" * 500) == (
        "https://shop.ru/"
    )
    assert await link_store.record_click(admin_db, "missing0", "h", "UA") is None
    clicks = await link_store.clicks(admin_db, "code0001")
    assert len(clicks) == 1 and len(clicks[0].user_agent) == link_store.USER_AGENT_LENGTH
    found = await pg.fetch(admin_db, "SELECT message_id FROM admin.links WHERE code = 'code0002'")
    assert found == [(502,)]


# --- HTTP over a real socket --------------------------------------------------------------


async def test_short_link_redirects_and_counts_a_click(admin_app: AdminApp) -> None:
    pool = admin_app.admin.pool
    await link_store.save_links(pool, [LinkRow("Abc-123_", "https://shop.ru/sale?x=1")], str)
    async with aiohttp.ClientSession(admin_app.url) as http:
        async with http.get(
            "/l/Abc-123_", allow_redirects=False, headers={"User-Agent": BROWSER}
        ) as r:
            assert r.status == 302
            assert r.headers["Location"] == "https://shop.ru/sale?x=1"
            assert r.headers["Cache-Control"] == "no-store"
        async with http.head("/l/Abc-123_", allow_redirects=False) as r:
            assert r.status == 302
        bot = {"User-Agent": "TelegramBot (like TwitterBot)"}
        async with http.get("/l/Abc-123_", allow_redirects=False, headers=bot) as r:
            assert r.status == 302
    clicks = await link_store.clicks(pool, "Abc-123_")
    assert [c.user_agent for c in clicks] == [BROWSER]
    assert clicks[0].ip_hash == ip_hash("127.0.0.1", "Abc-123_")


@pytest.mark.parametrize(
    "path", ["/l/Unknown1", "/l/x", "/l/..%2F..%2Fetc", "/l/https:%2F%2Fevil.com%2Fxxxxx"]
)
async def test_unknown_code_is_a_404_page_not_a_redirect(admin_app: AdminApp, path: str) -> None:
    headers = {"User-Agent": BROWSER}
    async with (
        aiohttp.ClientSession(admin_app.url) as http,
        http.get(path, allow_redirects=False, headers=headers) as r,
    ):
        assert r.status == 404
        assert "Location" not in r.headers
        assert "does not exist" in await r.text()
    assert await pg.fetch(admin_app.admin.pool, "SELECT count(*) FROM admin.clicks") == [(0,)]


async def test_redirect_ignores_anything_the_request_says(admin_app: AdminApp) -> None:
    pool = admin_app.admin.pool
    await link_store.save_links(pool, [LinkRow("Code123", "https://shop.ru/")], str)
    async with aiohttp.ClientSession(admin_app.url) as http:
        path = "/l/Code123?next=https://evil.com&url=https://evil.com"
        async with http.get(path, allow_redirects=False, headers={"Host": "evil.com"}) as r:
            assert r.headers["Location"] == "https://shop.ru/"
