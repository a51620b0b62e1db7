"""Scopes, the route table and sender allow-lists (gateway/core/access.py): pure."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.access import (
    ALL_SCOPES,
    ROUTE_SCOPES,
    Scope,
    parse_scopes,
    required_scope,
    sender_allowed,
)
from gateway.http import (
    handlers,
    inbound_handlers,
    ops_handlers,
    otp_handlers,
    routing_admin_handlers,
    routing_handlers,
)

scope_sets = st.frozensets(st.sampled_from(list(Scope)))
routes = st.sampled_from(sorted(ROUTE_SCOPES))


def _app_routes() -> set[tuple[str, str]]:
    app = web.Application()
    modules = (handlers, ops_handlers, routing_handlers, routing_admin_handlers, inbound_handlers)
    for module in modules:
        app.add_routes(module.routes())
    otp_handlers.setup(app)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def test_every_route_of_the_api_is_in_the_scope_table() -> None:
    missing = _app_routes() - set(ROUTE_SCOPES)
    assert not missing, f"routes without a declared scope: {sorted(missing)}"


def test_sending_reading_and_administering_need_their_scopes() -> None:
    assert required_scope("POST", "/v1/messages") is Scope.SEND
    assert required_scope("GET", "/v1/messages/{id}") is Scope.READ
    assert required_scope("GET", "/v1/providers") is Scope.ADMIN
    assert required_scope("GET", "/v1/health") is None


def passes(route: tuple[str, str], scopes: frozenset[Scope]) -> bool:
    needed = required_scope(*route)
    return needed is None or needed in scopes


@given(routes, scope_sets, scope_sets)
def test_more_scopes_never_take_access_away(
    route: tuple[str, str], scopes: frozenset[Scope], more: frozenset[Scope]
) -> None:
    if passes(route, scopes):
        assert passes(route, scopes | more)
    assert passes(route, ALL_SCOPES)
    assert passes(route, frozenset()) == (ROUTE_SCOPES[route] is None)


@given(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), st.text(max_size=40))
def test_a_route_missing_from_the_table_needs_admin(method: str, path: str) -> None:
    if (method, path) not in ROUTE_SCOPES:
        assert required_scope(method, path) is Scope.ADMIN


@given(routes)
def test_head_is_read_like_get(route: tuple[str, str]) -> None:
    method, path = route
    if method == "GET":
        assert required_scope("HEAD", path) == required_scope("GET", path)


def test_scope_names_are_checked() -> None:
    assert parse_scopes(["send", "read"]) == {Scope.SEND, Scope.READ}
    with pytest.raises(ValueError, match="unknown scope 'write'"):
        parse_scopes(["write"])
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes([])


senders = st.from_regex(r"[A-Za-z0-9]{1,11}", fullmatch=True)


@given(senders, st.lists(senders, max_size=5), st.none() | senders)
def test_the_allow_list_admits_its_ids_and_the_default_only(
    sender: str, listed: list[str], default: str | None
) -> None:
    permitted = {s.casefold() for s in [*listed, *([default] if default else [])]}
    assert sender_allowed(sender, listed, default) == (sender.casefold() in permitted)
    assert sender_allowed(sender, None, default)  # no list: not restricted


def test_numbers_match_with_or_without_plus_and_names_regardless_of_case() -> None:
    assert sender_allowed("+79001234567", ["79001234567"], None)
    assert sender_allowed("myshop", ["MyShop"], None)
    assert not sender_allowed("Other", [], "MyShop")
    assert sender_allowed("MyShop", [], "MyShop")


def test_access_cores_import_no_io() -> None:
    modules = "gateway.core.access, gateway.core.ssrf, gateway.core.api_limits"
    code = f"import sys, {modules}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    io = ("asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "ssl", "selectors")
    assert not [m for m in loaded if m.split(".")[0] in io]


def test_the_openapi_document_states_each_operations_scope_and_limits() -> None:
    from gateway.http.openapi import OPENAPI

    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            scope = required_scope(method, path)
            assert "429" in operation["responses"], (method, path)
            if scope is not None:
                assert operation["security"] == [{"bearer": [scope.value]}], (method, path)
                assert "403" in operation["responses"], (method, path)
