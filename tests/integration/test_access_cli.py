"""``smsgw key-add | key-list | key-revoke | client-senders`` against a real PostgreSQL."""

from __future__ import annotations

import json

import aiopg
import pytest

from gateway.adapters import client_store
from gateway.core.access import DEFAULT_SCOPES, Scope
from gateway.embedded import ServerUrls
from smsgw.cli import main


def smsgw(
    urls: ServerUrls,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
) -> object:
    monkeypatch.setenv("DATABASE_URL", urls.database_url)
    monkeypatch.setenv("REDIS_URL", urls.redis_url)
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
async def client(pool: aiopg.Pool, clean: None) -> client_store.NewClient:
    return await client_store.create(pool, "cli-shop", default_sender="Shop")


def test_keys_are_made_listed_and_revoked(
    server_urls: ServerUrls,
    client: client_store.NewClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = lambda *argv: smsgw(server_urls, monkeypatch, capsys, *argv)  # noqa: E731
    made = run("key-add", "cli-shop", "--scope", "send", "--scope", "read")
    assert isinstance(made, dict) and made["api_key"].startswith("sk_")
    assert made["scopes"] == ["read", "send"]
    listed = run("key-list", "cli-shop")
    assert isinstance(listed, list) and len(listed) == 2
    assert [k["scopes"] for k in listed] == [["admin", "read", "send"], ["read", "send"]]
    assert made["api_key"] not in json.dumps(listed)  # never the key itself
    assert run("key-revoke", made["prefix"]) == {"revoked": made["prefix"], "effective_within_s": 1}
    assert run("key-list", "cli-shop")[1]["revoked_at"] is not None  # type: ignore[index]
    with pytest.raises(SystemExit, match="no live key has"):
        run("key-revoke", made["prefix"])


async def test_the_cli_and_the_store_agree_on_scopes(
    pool: aiopg.Pool, client: client_store.NewClient
) -> None:
    key = await client_store.add_key(pool, client.client.id, {Scope.READ})
    found = await client_store.by_key(pool, key)
    assert found is not None and found.scopes == {Scope.READ}
    default = await client_store.by_key(pool, client.api_key)
    assert default is not None and default.scopes == DEFAULT_SCOPES  # operator: only if named
    operator = await client_store.add_key(pool, client.client.id, {Scope.OPERATOR})
    found = await client_store.by_key(pool, operator)
    assert found is not None and found.scopes == {Scope.OPERATOR}


def test_sender_ids_are_set_checked_and_lifted(
    server_urls: ServerUrls,
    client: client_store.NewClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = lambda *argv: smsgw(server_urls, monkeypatch, capsys, *argv)  # noqa: E731
    set_ = run("client-senders", "cli-shop", "MyShop", "79001234567")
    assert set_ == {
        "client": "cli-shop",
        "default_sender": "Shop",
        "allowed_senders": ["MyShop", "79001234567"],
    }
    assert run("client-senders", "cli-shop")["allowed_senders"] == []  # type: ignore[index]
    assert run("client-senders", "cli-shop", "--any")["allowed_senders"] is None  # type: ignore[index]
    with pytest.raises(SystemExit, match="alphanumeric"):
        run("client-senders", "cli-shop", "far too long a sender")


def test_client_add_refuses_a_private_callback_url(
    server_urls: ServerUrls,
    clean: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit, match="loopback"):
        smsgw(
            server_urls, monkeypatch, capsys, "client-add", "x", "--callback-url", "http://127.1/"
        )
