"""Pure inbound logic: parts, decoding, joining, keywords, forwarding rules, enforcement."""

from __future__ import annotations

import random
import tomllib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config_schema import ConfigError, build
from gateway.core.inbound import (
    OPTED_OUT,
    Decided,
    ForwardRule,
    InboundSettings,
    Joined,
    OptAction,
    Piece,
    Rules,
    address,
    bulk_refusal,
    decide,
    decode_payload,
    first_word,
    fold,
    forward_payload,
    join,
    opt_changes,
    piece_of,
)
from gateway.core.message import Priority
from providers.base import InboundPart
from providers.encoding import encode_parts

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
RULES = Rules.of(InboundSettings(), "RU")


def part(
    short_message: bytes, data_coding: int = 8, esm_class: int = 0, **kw: object
) -> InboundPart:
    fields: dict[str, object] = {"provider": "mts", "source": "79211234567", "destination": "1234"}
    fields |= kw
    return InboundPart(
        data_coding=data_coding,
        esm_class=esm_class,
        short_message=short_message,
        **fields,  # type: ignore[arg-type]
    )


def udh8(ref: int, total: int, seq: int) -> bytes:
    return bytes([5, 0x00, 3, ref, total, seq])


def udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes([6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq])


# -- decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "coding", "text"),
    [
        (b"Hello @ 1", 1, "Hello @ 1"),  # IA5: plain ASCII, "@" is 0x40
        (bytes([0x48, 0x00, 0x1B, 0x65]), 0, "H@€"),  # GSM-7 unpacked, with an escape
        ("Grüße".encode("latin-1"), 3, "Grüße"),
        ("Привет".encode("utf-16-be"), 8, "Привет"),
        ("😀".encode("utf-16-be"), 8, "😀"),
    ],
)
def test_decode_by_data_coding(data: bytes, coding: int, text: str) -> None:
    assert decode_payload(data, coding) == text


def test_ia5_is_not_read_as_gsm7() -> None:
    assert decode_payload(b"a_b$", 1) == "a_b$"  # GSM-7 would make "_" and "$" something else


@given(st.binary(max_size=300), st.integers(0, 255))
def test_decoding_never_raises(data: bytes, coding: int) -> None:
    assert isinstance(decode_payload(data, coding), str)


# -- parts -------------------------------------------------------------------------------


def test_udh_8_bit_reference() -> None:
    piece = piece_of(part(udh8(7, 3, 2) + "мир".encode("utf-16-be"), esm_class=0x40), "RU", NOW)
    assert (piece.ref, piece.total, piece.seq) == (7, 3, 2)
    assert piece.payload == "мир".encode("utf-16-be")
    assert piece.key == ("mts", "+79211234567", "1234", 7, 3)


def test_udh_16_bit_reference() -> None:
    piece = piece_of(part(udh16(0x1234, 2, 1) + b"\x04\x1f", esm_class=0x40), "RU", NOW)
    assert (piece.ref, piece.total, piece.seq) == (0x1234, 2, 1)
    assert piece.payload == b"\x04\x1f"


def test_sar_tlvs() -> None:
    piece = piece_of(part(b"\x04\x1f", sar=(300, 4, 3)), "RU", NOW)
    assert (piece.ref, piece.total, piece.seq, piece.payload) == (300, 4, 3, b"\x04\x1f")


@pytest.mark.parametrize("sar", [(1, 2, 3), (1, 0, 0), (1, 2, 0), (70000, 2, 1)])
def test_impossible_sar_is_a_whole_message(sar: tuple[int, int, int]) -> None:
    assert piece_of(part(b"\x04\x1f", sar=sar), "RU", NOW).total == 1


def test_udh_without_concatenation_is_stripped_and_whole() -> None:
    port_ie = bytes([6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0])
    piece = piece_of(part(port_ie + b"\x04\x1f", esm_class=0x40), "RU", NOW)
    assert (piece.total, piece.payload) == (1, b"\x04\x1f")


def test_one_part_of_one_is_whole() -> None:
    assert piece_of(part(udh8(9, 1, 1) + b"\x00A", esm_class=0x40), "RU", NOW).ref == 0


def test_http_text_is_whole_and_kept() -> None:
    piece = piece_of(InboundPart("http1", "+79211234567", "1234", text="СТОП"), "RU", NOW)
    assert join([piece]).text == "СТОП"


def test_received_at_from_the_provider_wins() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert piece_of(part(b"", received_at=at), "RU", NOW).received_at == at


@given(
    st.binary(max_size=200),
    st.integers(0, 255),
    st.integers(0, 255),
    st.none() | st.tuples(st.integers(-5, 70000), st.integers(-1, 300), st.integers(-1, 300)),
    st.text(max_size=40),
)
def test_piece_of_never_raises(
    data: bytes, coding: int, esm: int, sar: tuple[int, int, int] | None, source: str
) -> None:
    piece = piece_of(part(data, coding, esm, sar=sar, source=source), "RU", NOW)
    assert 1 <= piece.seq <= piece.total
    assert isinstance(join([piece]).text, str)


# -- joining -----------------------------------------------------------------------------


GREEK_AS_LATIN = "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"


def pieces_of(text: str, ref: int = 5) -> list[Piece]:
    return [
        piece_of(part(p.short_message, p.data_coding, p.esm_class), "RU", NOW)
        for p in encode_parts(text, ref, max_parts=20)
    ]


@given(
    # Greek capitals that look Latin go out as Latin letters (GSM 03.38): not round trips;
    # NUL is dropped (PostgreSQL text cannot hold it).
    st.text(
        st.characters(
            codec="utf-8", exclude_categories=["Cs"], exclude_characters=GREEK_AS_LATIN + "\x00"
        ),
        min_size=1,
        max_size=900,
    ),
    st.randoms(use_true_random=False),
)
def test_parts_join_in_any_order_with_repeats(text: str, rnd: random.Random) -> None:
    pieces = pieces_of(text)
    shuffled = pieces + rnd.sample(pieces, k=min(2, len(pieces)))
    rnd.shuffle(shuffled)
    joined = join(shuffled)
    assert joined.text == text
    assert joined.complete and joined.parts == len(pieces)


def test_surrogate_pair_split_between_parts_is_joined() -> None:
    data = ("Привет 😀 мир").encode("utf-16-be")
    cut = data.index("😀".encode("utf-16-be")) + 2  # between the high and the low surrogate
    pieces = [
        piece_of(part(udh8(1, 2, 2) + data[cut:], esm_class=0x40), "RU", NOW),
        piece_of(part(udh8(1, 2, 1) + data[:cut], esm_class=0x40), "RU", NOW),
    ]
    assert join(pieces).text == "Привет 😀 мир"


def test_gsm_escape_split_between_parts_is_joined() -> None:
    pieces = [
        piece_of(part(b"Price 5\x1b", 0, sar=(2, 2, 1)), "RU", NOW),
        piece_of(part(b"\x65", 0, sar=(2, 2, 2)), "RU", NOW),
    ]
    assert join(pieces).text == "Price 5€"


def test_incomplete_message_keeps_what_came() -> None:
    pieces = pieces_of("Д" * 200)  # 3 parts
    joined = join([pieces[0], pieces[2]])
    assert (joined.parts, joined.total, joined.complete) == (2, 3, False)
    assert joined.text == "Д" * 133  # 67 + 66: the middle part never came


# -- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("79211234567", "+79211234567"),
        ("89211234567", "+79211234567"),
        ("9211234567", "+79211234567"),
        (" +79211234567 ", "+79211234567"),
        ("4915123456789", "+4915123456789"),
        ("1234", "1234"),  # a short code
        ("Shop", "Shop"),  # an alphanumeric sender
        ("", ""),
    ],
)
def test_address_is_e164_where_it_is_a_number(raw: str, e164: str) -> None:
    assert address(raw, "RU") == e164


# -- keywords ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop. ", "СТОП", "стоп!", "«Стоп»", "Отписаться", "ОТПИСКА!!!",
     "UNSUBSCRIBE", "не  присылать", "CTOП", "стоп 🙏"],
)  # fmt: skip
def test_opt_out_keywords(text: str) -> None:
    assert RULES.action(text) is OptAction.OPT_OUT


@pytest.mark.parametrize("text", ["START", "старт", "Подписаться.", "СТАРТ!"])
def test_opt_in_keywords(text: str) -> None:
    assert RULES.action(text) is OptAction.OPT_IN


@pytest.mark.parametrize("text", ["Стоп, а где мой заказ?", "stopped", "нестоп", "", "!!!"])
def test_other_texts_change_nothing(text: str) -> None:
    assert RULES.action(text) is None


def test_yo_and_e_are_one_letter() -> None:
    rules = Rules.of(InboundSettings(opt_out_keywords=("ОТКАЗЫВАЮСЬ ОТ ВСЕГО",)), "RU")
    assert rules.action("Отказываюсь от всЁго") is OptAction.OPT_OUT
    assert Rules.of(InboundSettings(opt_out_keywords=("ЁЛКИ",)), "RU").action("елки")


keywords = st.sampled_from(["STOP", "СТОП", "Unsubscribe", "отписка", "Отписаться"])
marks = st.text(st.sampled_from(" \t\n.,!?«»\"'-…()"), max_size=4)


@given(keywords, marks, marks, st.booleans())
def test_keyword_matches_whatever_its_case_and_surrounding_marks(
    keyword: str, before: str, after: str, upper: bool
) -> None:
    text = before + (keyword.upper() if upper else keyword.lower()) + after
    assert RULES.action(text) is OptAction.OPT_OUT


@given(st.text(max_size=50))
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_first_word() -> None:
    assert first_word("  Pizza, please") == fold("PIZZA")
    assert first_word("") == ""


def test_one_keyword_cannot_opt_out_and_in() -> None:
    with pytest.raises(ValueError, match="both"):
        InboundSettings(opt_out_keywords=("STOP",), opt_in_keywords=("stop!",))


def test_opt_out_only_from_numbers() -> None:
    msg = Joined("mts", "Shop", "1234", "STOP", 1, 1, NOW)
    assert decide([msg], RULES)[0].action is None


# -- forwarding rules --------------------------------------------------------------------


def rules_with(*forward: ForwardRule) -> Rules:
    return Rules.of(InboundSettings(forward=forward), "RU")


def test_most_specific_rule_wins() -> None:
    everything = ForwardRule("ops", "http://h/all")
    by_number = ForwardRule("shop", "http://h/number", destination="89001234567")
    by_word = ForwardRule("pizza", "http://h/word", keyword="Pizza")
    both = ForwardRule("pizza-msk", "http://h/both", destination="+79001234567", keyword="PIZZA")
    rules = rules_with(everything, by_number, by_word, both)
    assert rules.route("+79001234567", "pizza!") == rules.forward[3]
    assert rules.route("+79005550000", "Pizza please") == rules.forward[2]
    assert rules.route("+79001234567", "hello") == rules.forward[1]
    assert rules.route("1234", "hello") == rules.forward[0]


def test_first_of_equal_rules_wins_and_no_rule_means_none() -> None:
    rules = rules_with(
        ForwardRule("a", "http://h/a", "1234"), ForwardRule("b", "http://h/b", "1234")
    )
    assert rules.route("1234", "x") is not None
    assert rules.route("1234", "x").client == "a"  # type: ignore[union-attr]
    assert rules.route("5555", "x") is None


def test_rule_keyword_is_folded() -> None:
    rules = rules_with(ForwardRule("a", "http://h/a", keyword="Ёлка"))
    assert rules.route("1", "ЕЛКА.") is not None


def test_rule_needs_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        ForwardRule("a", "ftp://h/a")


# -- batch decisions and enforcement -----------------------------------------------------


def test_last_opt_change_of_a_number_stands() -> None:
    msgs = [
        Joined("mts", "+79211234567", "1234", text, 1, 1, NOW)
        for text in ("STOP", "hello", "START")
    ] + [Joined("mts", "+79217654321", "1234", "СТОП", 1, 1, NOW)]
    decided = decide(msgs, RULES)
    changes = opt_changes(decided, lambda d: d)
    assert [(d.message.source, d.action) for d in changes] == [
        ("+79211234567", OptAction.OPT_IN),
        ("+79217654321", OptAction.OPT_OUT),
    ]


def test_only_bulk_respects_the_opt_out_list() -> None:
    listed = {"+79211234567"}
    assert bulk_refusal(Priority.BULK, "+79211234567", listed) == OPTED_OUT
    assert bulk_refusal(Priority.BULK, "+79217654321", listed) is None
    assert bulk_refusal(Priority.OTP, "+79211234567", listed) is None
    assert bulk_refusal(Priority.TRANSACTIONAL, "+79211234567", listed) is None


def test_forward_payload() -> None:
    msg = Joined("mts", "+79211234567", "1234", "СТОП", 1, 1, NOW)
    body = forward_payload(42, Decided(msg, OptAction.OPT_OUT, None), NOW)
    assert body["type"] == "message.inbound"
    assert body["data"] == {
        "id": "42",
        "from": "+79211234567",
        "to": "1234",
        "text": "СТОП",
        "parts": 1,
        "total": 1,
        "complete": True,
        "provider": "mts",
        "action": "opt_out",
        "received_at": NOW.isoformat(),
    }


# -- settings ----------------------------------------------------------------------------

EXAMPLE = """
[inbound]
opt_out_keywords = ["STOP", "СТОП", "ОТПИСКА"]
opt_in_keywords = ["START", "СТАРТ"]
part_ttl_s = 600

[[inbound.forward]]
client = "shop"
destination = "+79001234567"
url = "https://shop.example/sms/inbound"

[[inbound.forward]]
client = "pizza"
keyword = "PIZZA"
url = "https://pizza.example/hook"
"""


def test_settings_from_toml() -> None:
    settings = build(InboundSettings, tomllib.loads(EXAMPLE)["inbound"], "inbound")
    assert settings.part_ttl_s == 600.0
    assert settings.forward[1] == ForwardRule(
        "pizza", "https://pizza.example/hook", keyword="PIZZA"
    )
    assert build(InboundSettings, {}, "inbound") == InboundSettings()


def test_settings_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"inbound.forward\[0\].clent"):
        build(InboundSettings, {"forward": [{"clent": "x", "url": "http://a"}]}, "inbound")
    with pytest.raises(ConfigError, match="http"):
        build(InboundSettings, {"forward": [{"client": "x", "url": "a"}]}, "inbound")
