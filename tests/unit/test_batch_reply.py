"""The batch reply, encoded by orjson, is the JSON ``json`` would give; what orjson cannot
encode (a lone surrogate in an unknown field's name) is still answered."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.http.handlers import _fast_json

SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
ITEMS = st.lists(st.dictionaries(st.text(), SCALARS, max_size=9), max_size=5)


def decoded(value: dict[str, Any], status: int = 202) -> Any:
    response = _fast_json(value, status)
    assert response.status == status
    assert response.content_type == "application/json" and response.charset == "utf-8"
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


@given(ITEMS, ITEMS)
def test_the_reply_decodes_to_what_was_encoded(accepted: Any, rejected: Any) -> None:
    value = {"accepted": accepted, "rejected": rejected}
    assert decoded(value) == json.loads(json.dumps(value))


def test_a_lone_surrogate_in_a_field_name_is_escaped() -> None:
    rejected = [{"index": 0, "field": "messages[0].\ud800", "code": "unknown_field"}]
    assert decoded({"accepted": [], "rejected": rejected}, 422)["rejected"] == rejected
