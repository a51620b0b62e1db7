"""``nul_path`` finds the one field PostgreSQL text would refuse, wherever it is."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.storable import nul_path

_CLEAN = st.text(st.characters(exclude_characters="\0"), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _CLEAN,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_CLEAN, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_clean_values_have_no_nul_path(value: Any) -> None:
    assert nul_path(value) is None


@given(st.lists(json_values, max_size=4), st.integers(0, 4), _CLEAN, _CLEAN)
def test_a_nul_anywhere_is_named_by_its_path(
    items: list[Any], at: int, head: str, tail: str
) -> None:
    at = min(at, len(items))
    body = {"messages": [*items[:at], {"text": head + "\0" + tail}, *items[at:]]}
    assert nul_path(body) == f"messages[{at}].text"


def test_a_nul_in_a_key_names_the_object() -> None:
    assert nul_path({"a": {"b\0": 1}}) == "a"
    assert nul_path({"b\0": 1}) == "body"
    assert nul_path(["x", "y\0"]) == "[1]"
