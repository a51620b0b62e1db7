"""The admin's settings: the ``[admin]`` table of the config file, read once at start."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.config_schema import build
from gateway.settings import Secret, Settings


@dataclass(frozen=True)
class AdminSettings:
    host: str = "127.0.0.1"
    port: int = 8090
    # Secure cookies: "auto" = on unless the admin listens on loopback over plain HTTP.
    cookie_secure: Literal["auto", "on", "off"] = "auto"
    session_ttl_h: float = 8.0
    login_attempts: int = 5  # failed log-ins per account and per IP in 15 minutes
    # The gateway API the campaigns send through; unset: this process's own API.
    gateway_url: str | None = None
    # env SMSGW_ADMIN_API_KEY; scopes send and read, plus admin and operator for the
    # providers page (unset: smsgw/admin_serving.py makes such a key)
    gateway_api_key: Secret | None = None
    link_base_url: str | None = None  # short links: {link_base_url}/l/{code}
    conversion_window_h: float = 72.0
    campaign_chunk: int = 1000
    default_timezone: str = "Europe/Moscow"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure != "auto":
            return self.cookie_secure == "on"
        return self.host not in ("127.0.0.1", "::1", "localhost")

    @property
    def public_url(self) -> str:
        return self.link_base_url or f"http://{self.host}:{self.port}"


def admin_settings(settings: Settings, env: Mapping[str, str]) -> AdminSettings:
    """From the ``[admin]`` table (raises ConfigError naming the key), then the environment."""
    data: Any = settings.modules.get("admin", {})
    found = build(AdminSettings, data, "admin")
    if env.get("SMSGW_ADMIN_API_KEY"):
        found = dataclasses.replace(found, gateway_api_key=Secret(env["SMSGW_ADMIN_API_KEY"]))
    if env.get("SMSGW_ADMIN_PORT"):
        found = dataclasses.replace(found, port=int(env["SMSGW_ADMIN_PORT"]))
    if found.gateway_url is None:
        found = dataclasses.replace(
            found, gateway_url=f"http://{settings.http.host}:{settings.http.port}"
        )
    return found
