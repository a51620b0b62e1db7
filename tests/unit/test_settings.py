"""Settings: the example file loads; unknown keys and bad values are refused by name."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.config_schema import ConfigError
from gateway.settings import Secret, from_mapping, load, with_env

EXAMPLE = Path(__file__).parents[2] / "examples" / "smsgw.toml"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_loads() -> None:
    settings = load(EXAMPLE, {})
    cheap, mid, dear = settings.providers
    assert (cheap.name, mid.name, dear.name) == ("cheap", "mid", "dear")
    assert cheap.smpp is not None and cheap.smpp.port == 2775 and cheap.tps == 200
    assert settings.routing.providers and len(settings.routing.entries) > 3
    assert settings.dispatch.weights == (16, 4, 1)
    assert settings.config_path == EXAMPLE


def key_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        from_mapping(data)
    return info.value.key


def test_unknown_keys_are_named() -> None:
    data = example()
    data["providers"][0]["windw"] = 5
    assert key_error(data) == "providers[0].windw"
    assert key_error({"htpp": {}}) == "htpp"
    assert key_error({"http": {"prot": 1}}) == "http.prot"


def test_bad_values_are_named() -> None:
    data = example()
    data["providers"][0]["window"] = "many"
    assert key_error(data) == "providers[0].window"
    data = example()
    data["providers"][0]["price_per_part"] = "cheap"
    assert key_error(data) == "providers[0].price_per_part"
    data = example()
    data["providers"][0]["bind_mode"] = "receiver-ish"
    assert key_error(data) == "providers[0].bind_mode"
    assert key_error({"http": {"port": True}}) == "http.port"


def test_missing_provider_key_is_named() -> None:
    data = example()
    del data["providers"][0]["host"]
    assert key_error(data) == "providers[0].host"


def test_environment_wins_and_secrets_never_print() -> None:
    settings = with_env(load(EXAMPLE, {}), {"DATABASE_URL": "postgresql://u:pw@h/db"})
    assert settings.database_url == "postgresql://u:pw@h/db"
    assert "pw" not in repr(settings) and "secret" not in repr(settings.providers[0])
    assert repr(Secret("x")) == "Secret('**********')"


def test_id_bases_are_checked() -> None:
    data = example()
    data["providers"][0]["submit_id_base"] = 16
    assert key_error(data) == "providers[0]"
    data["providers"][0]["receipt_id_base"] = 10
    provider = from_mapping(data).providers[0]
    assert (provider.submit_id_base, provider.receipt_id_base) == (16, 10)
