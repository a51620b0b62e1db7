"""Templates: parsing, rendering with defaults, and the preview measured by the gateway's rules."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from admin.adapters import template_store
from admin.core.roles import Role
from admin.core.templates import (
    CONTACT_FIELDS,
    InvalidTemplate,
    Placeholder,
    PreviewRequest,
    check_defaults,
    measure,
    parse_template,
    preview,
    price_for,
    render,
    unit_price,
    worst_case,
)
from admin.core.translit import transliterate
from gateway.adapters import pg
from providers.encoding import analyse, split
from routing import load_table

NAMES = sorted(CONTACT_FIELDS)

if TYPE_CHECKING:
    from tests.admin.conftest import AdminApp

RELAXED = settings(deadline=None)  # a loaded 2-core machine: no per-example deadline


def test_placeholders_inline_default_and_escapes() -> None:
    t = parse_template("Привет, {first_name|клиент}! Скидка {{10%}} по коду {custom.code}")
    assert t.placeholders == ("first_name", "custom.code")
    assert Placeholder("first_name", "клиент") in t.pieces
    fields = {"first_name": "Аня", "custom": {"code": "X1"}}
    assert render(t, fields) == "Привет, Аня! Скидка {10%} по коду X1"
    assert render(t, {}) == "Привет, клиент! Скидка {10%} по коду "


def test_defaults_map_applies_when_no_inline_default_and_value_blank() -> None:
    t = parse_template("{first_name}, {last_name|друг}")
    assert render(t, {"first_name": "  "}, {"first_name": "Клиент"}) == "Клиент, друг"
    assert render(t, {"first_name": "Ян", "last_name": "Ли"}, {"first_name": "X"}) == "Ян, Ли"


def test_values_read_as_russian_text() -> None:
    t = parse_template("{birth_date} {total_spend} {purchases} {last_activity_at}")
    fields = {
        "birth_date": dt.date(1990, 3, 7),
        "total_spend": Decimal("1500.00"),
        "purchases": 3,
        "last_activity_at": dt.datetime(2026, 11, 1, 9, 5),
    }
    assert render(t, fields) == "07.03.1990 1500 3 01.11.2026 09:05"


def test_custom_field_may_also_come_flat() -> None:
    t = parse_template("{custom.city_ru}")
    assert render(t, {"custom.city_ru": "Тверь"}) == "Тверь"
    assert render(t, {"custom": "not a map"}, {"custom.city_ru": "—"}) == "—"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Hi {frist_name}", "frist_name"),
        ("Hi {first_name", "{"),
        ("Hi first_name}", "}"),
        ("Hi {}", ""),
        ("Hi {first name}", "first name"),
        ("{phone|x} {Bad}", "Bad"),
    ],
)
def test_bad_template_names_the_placeholder(text: str, named: str) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        parse_template(text)
    assert caught.value.placeholder == named


def test_defaults_must_belong_to_the_text() -> None:
    t = parse_template("{first_name}")
    assert check_defaults(t, {"first_name": "друг"}) == {"first_name": "друг"}
    with pytest.raises(InvalidTemplate, match="region"):
        check_defaults(t, {"region": "x"})
    with pytest.raises(InvalidTemplate):
        check_defaults(t, {"first_name": 5})


def test_preview_lists_what_forces_ucs2_in_order_once() -> None:
    p = preview("Sale — 50% off, ёлка «ура»")
    assert p.encoding == "ucs2"
    assert p.ucs2_chars == ("—", "ё", "л", "к", "а", "«", "у", "р", "»")
    assert (p.parts, p.chars, p.units, p.chars_per_part) == (1, 26, 26, 70)


def test_preview_parts_and_lengths_of_a_long_gsm_text() -> None:
    p = preview("{first_name}: " + "a" * 300 + " €", PreviewRequest(fields={"first_name": "Jo"}))
    assert p.encoding == "gsm7"
    assert p.part_lengths == (153, 152, 2)  # the € costs two septets: it moves whole
    assert p.parts == 3 and p.ucs2_chars == ()


def test_transliteration_saves_parts() -> None:
    text = (
        "Здравствуйте, {first_name}! Ваш заказ готов, ждём вас в магазине на Тверской до пятницы."
    )
    request = PreviewRequest(fields={"first_name": "Ольга"})
    plain = preview(text, request)
    saved = preview(text, PreviewRequest(fields={"first_name": "Ольга"}, rewrite=transliterate))
    assert (plain.encoding, plain.parts) == ("ucs2", 2)
    assert (saved.encoding, saved.parts) == ("gsm7", 1)


def test_price_is_parts_times_unit_price() -> None:
    p = preview("Ц" * 71, PreviewRequest(unit_price=Decimal("2.15")))
    assert p.parts == 2 and p.price == Decimal("4.30")
    assert price_for(3, Decimal("0.1")) == Decimal("0.3")


def test_unit_price_from_the_gateway_route_table() -> None:
    table = load_table(
        {
            "routes": [
                {"provider": "a", "prefixes": ["+7"], "price_per_part": "2.10"},
                {"provider": "b", "prefixes": ["+79"], "price_per_part": "2.50"},
            ]
        },
        ["a", "b"],
    )
    assert unit_price(table, "+79161234567") == Decimal("2.50")  # the dearest: what is held
    assert unit_price(table, "+4915112345678") is None


def test_worst_case_uses_max_lengths_and_the_costliest_letter() -> None:
    text = "{first_name}, скидка 10% только сегодня!"
    short = preview(text, PreviewRequest(fields={"first_name": "Ян"}))
    worst = worst_case(text, PreviewRequest(max_lengths={"first_name": 50}))
    assert short.parts == 1 and worst.parts == 2
    assert worst.chars == len(text) - len("{first_name}") + 50
    gsm = worst_case("Hi {first_name}", PreviewRequest(rewrite=transliterate))
    assert gsm.encoding == "gsm7" and gsm.units == 3 + 4 * 20


def test_worst_case_counts_a_long_default_whole() -> None:
    w = worst_case("{city|Санкт-Петербург}", PreviewRequest(max_lengths={"city": 3}))
    assert w.chars == len("Санкт-Петербург")


def test_templates_core_imports_no_io() -> None:
    code = (
        "import sys, admin.core.templates, admin.core.translit, admin.core.links;"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    forbidden = {"asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "gateway"}
    assert not [m for m in loaded if m.split(".")[0] in forbidden]


# --- properties --------------------------------------------------------------------------

literal = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
placeholder = st.builds(
    lambda name, default: "{" + name + ("" if default is None else "|" + default) + "}",
    st.sampled_from(NAMES),
    st.none() | st.text(st.characters(exclude_characters="{}|", exclude_categories=["Cs"])),
)
escaped = literal.map(lambda s: s.replace("{", "{{").replace("}", "}}"))
templates = st.lists(escaped | placeholder, max_size=8).map("".join)
# BMP only: the worst case bounds names (an emoji weighs two UTF-16 units, "Щ" one)
value_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=30)
values = st.dictionaries(st.sampled_from(NAMES), value_text)


@RELAXED
@given(
    templates, values.map(lambda d: {k: v.replace("{", "").replace("}", "") for k, v in d.items()})
)
def test_render_never_leaves_a_placeholder(text: str, fields: dict[str, str]) -> None:
    """Every brace of the output is an escaped literal: no placeholder survives."""
    rendered = render(parse_template(text), fields)
    assert rendered.count("{") == text.count("{{")
    assert rendered.count("}") == text.count("}}")


@RELAXED
@given(templates, values)
def test_preview_parts_equal_the_encoding_modules_count(text: str, fields: dict[str, str]) -> None:
    p = preview(text, PreviewRequest(fields=fields))
    info = analyse(p.text)
    assert (p.encoding, p.parts, p.units) == (str(info.encoding), info.parts, info.units)
    assert len(p.part_lengths) == p.parts == len(split(p.text, max_parts=255))
    assert sum(p.part_lengths) == p.units


@RELAXED
@given(templates, values)
@example("0" * 30 + "𐀀" * 9 + "{birth_date|" + "0" * 17 + "𐀀" * 3 + "}", {})  # astral default
def test_worst_case_is_never_fewer_parts(text: str, fields: dict[str, str]) -> None:
    t = parse_template(text)
    longest = {name: len(fields.get(name, "")) for name in t.placeholders}
    request = PreviewRequest(fields=fields, max_lengths=longest)
    assert worst_case(text, request).parts >= preview(text, request).parts


@RELAXED
@given(st.text(max_size=300))
def test_measure_matches_analyse_on_any_text(text: str) -> None:
    info = analyse(text)
    assert measure(text).parts == info.parts


# --- HTTP: the editor's API over a real socket -----------------------------------------------


async def test_preview_api_shows_encoding_parts_price_and_the_ucs2_warning(
    admin_app: AdminApp,
) -> None:
    http = await admin_app.client(Role.marketer)
    body = {
        "text": "Здравствуйте, {first_name|клиент}! Ваш заказ готов, ждём вас в магазине на "
        "Тверской до пятницы.",
        "sample": {"first_name": "Ольга"},
        "max_length": 40,
    }
    async with http.post("/api/templates/preview", json=body, headers=_csrf(http)) as reply:
        assert reply.status == 200, await reply.text()
        found = await reply.json()
    shown = found["preview"]
    assert shown["text"].startswith("Здравствуйте, Ольга!")
    assert (shown["encoding"], shown["parts"]) == ("ucs2", 2)
    assert "З" in shown["ucs2_chars"] and shown["part_lengths"] == [
        67,
        sum(shown["part_lengths"]) - 67,
    ]
    assert (found["transliterated"]["encoding"], found["transliterated"]["parts"]) == ("gsm7", 1)
    assert found["saved_parts"] == 1 and found["worst"]["parts"] >= 2
    assert shown["price"] is None  # the test gateway has no routes
    assert found["max_parts"] == 10


async def test_preview_api_prices_from_the_route_table(admin_app: AdminApp) -> None:
    table = load_table(
        {"routes": [{"provider": "a", "prefixes": ["+7"], "price_per_part": "2.15"}]}, ["a"]
    )
    admin = admin_app.admin
    admin.gateway_settings = replace(admin.gateway_settings, routing=table)
    http = await admin_app.client(Role.marketer)
    body = {"text": "Ц" * 81, "transliterate": True, "track_links": False}
    async with http.post("/api/templates/preview", json=body, headers=_csrf(http)) as reply:
        found = await reply.json()
    assert found["unit_price"] == "2.15"
    assert (found["preview"]["encoding"], found["preview"]["parts"]) == ("gsm7", 2)  # "TS" × 81
    assert found["preview"]["price"] == "4.30" and found["plain"]["price"] == "4.30"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "Hi {frist_name}"}, "text"),
        ({"text": "Hi {first_name"}, "text"),
        ({"text": 5}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "{first_name}", "defaults": {"region": "x"}}, "defaults"),
        ({"text": "{first_name}", "defaults": []}, "defaults"),
        ({"text": "hi", "transliterate": "yes"}, "transliterate"),
        ({"text": "hi", "sample": "Anna"}, "sample"),
        ({"text": "hi", "max_length": 10_000}, "max_length"),
        ({"text": "hi", "max_lengths": {"first_name": -1}}, "max_lengths"),
        ({"text": "hi", "sample_number": "8-916"}, "sample_number"),
        ({"text": "go https://{custom.shop}.ru/", "track_links": True}, "text"),
    ],
)
async def test_preview_api_names_the_bad_field(
    admin_app: AdminApp, body: dict[str, object], field: str
) -> None:
    http = await admin_app.client(Role.marketer)
    async with http.post("/api/templates/preview", json=body, headers=_csrf(http)) as reply:
        assert reply.status == 422
        assert (await reply.json())["error"]["field"] == field


async def test_preview_api_refuses_what_is_not_json(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.marketer)
    for data in (b"{", b"[1]"):
        async with http.post("/api/templates/preview", data=data, headers=_csrf(http)) as reply:
            assert reply.status == 400


async def test_templates_crud_with_audit(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.marketer)
    draft = {"name": "Welcome", "text": "Привет, {first_name}!", "defaults": {"first_name": "друг"}}
    async with http.post("/api/templates", json=draft, headers=_csrf(http)) as reply:
        assert reply.status == 201
        template_id = (await reply.json())["id"]
    async with http.post("/api/templates", json=draft, headers=_csrf(http)) as reply:
        assert reply.status == 409 and (await reply.json())["error"]["field"] == "name"
    changed = {**draft, "text": "Hi {first_name}", "transliterate": True, "track_links": True}
    async with http.put(f"/api/templates/{template_id}", json=changed, headers=_csrf(http)) as r:
        assert r.status == 200
    row = await template_store.get_template(admin_app.admin.pool, template_id)
    assert row is not None and (row.text, row.transliterate, row.track_links) == (
        "Hi {first_name}", True, True,
    )  # fmt: skip
    assert row.defaults == {"first_name": "друг"}
    async with http.get("/templates", params={"id": str(template_id)}) as page:
        html = await page.text()
        assert page.status == 200 and "Welcome" in html and "Hi {first_name}" in html
    async with http.delete(f"/api/templates/{template_id}", headers=_csrf(http)) as reply:
        assert reply.status == 200
    async with http.get(f"/api/templates/{template_id}") as reply:
        assert reply.status == 404
    async with http.get(f"/api/templates/{2**70}") as reply:
        assert reply.status == 404
    actions = await pg.fetch(admin_app.admin.pool, "SELECT action FROM admin.audit ORDER BY id")
    assert [a for (a,) in actions if a.startswith("template.")] == [
        "template.create", "template.update", "template.delete",
    ]  # fmt: skip


async def test_templates_are_for_marketers_not_analysts(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.analyst)
    async with http.post("/api/templates/preview", json={"text": "x"}, headers=_csrf(http)) as r:
        assert r.status == 403
    async with http.get("/templates") as page:
        assert page.status == 403


async def test_csrf_is_required_for_the_api(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.marketer)
    async with http.post("/api/templates", json={"name": "x", "text": "y"}) as reply:
        assert reply.status == 403


def _csrf(http: object) -> dict[str, str]:
    return {"X-CSRF-Token": http.csrf}  # type: ignore[attr-defined]


async def test_a_template_a_live_campaign_uses_cannot_be_deleted(admin_app: AdminApp) -> None:
    pool = admin_app.admin.pool
    draft = template_store.TemplateDraft("Used", "Hi {first_name}", {})
    template_id = await template_store.create_template(pool, draft, None)
    variants = json.dumps([{"variant": "A", "template_id": template_id, "percent": "100"}])
    rows = await pg.fetch(
        pool,
        "INSERT INTO admin.campaigns (name, state, audience_id, sender, variants, schedule) "
        "VALUES ('c', 'scheduled', 1, 'Shop', %s, '{}') RETURNING id",
        (variants,),
    )
    http = await admin_app.client(Role.marketer)
    async with http.delete(f"/api/templates/{template_id}", headers=_csrf(http)) as reply:
        assert reply.status == 409
        assert str(rows[0][0]) in (await reply.json())["error"]["message"]
    await pg.execute(pool, "UPDATE admin.campaigns SET state = 'finished'")
    async with http.delete(f"/api/templates/{template_id}", headers=_csrf(http)) as reply:
        assert reply.status == 200


async def test_preview_api_counts_the_short_link(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.marketer)
    body = {
        "text": "{first_name}, скидки: https://shop.example.ru/winter?utm_source=sms&u={custom.id}",
        "track_links": True,
        "sample": {"first_name": "Анна", "custom": {"id": "https://not.a.link/" + "z" * 50}},
    }
    async with http.post("/api/templates/preview", json=body, headers=_csrf(http)) as reply:
        found = await reply.json()
    base = admin_app.admin.settings.public_url
    assert found["preview"]["text"] == f"Анна, скидки: {base}/l/xxxxxxxx"
    assert found["preview"]["parts"] == 1
