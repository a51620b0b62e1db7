"""Typed settings, read once at the composition root from a TOML file and the environment.

Precedence: built-in defaults < the TOML file (``--config`` or ``SMSGW_CONFIG``) < the
environment (``DATABASE_URL``, ``REDIS_URL``, ``SMSGW_DATA_DIR``, ``SMSGW_HTTP_PORT``).
Nothing here runs at import time; ``load`` is called by the entry point only.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from gateway.config_schema import ConfigError, build, convert
from gateway.core.api_limits import ApiLimitSettings
from gateway.core.cipher_keys import decode_key
from gateway.core.inbound import InboundSettings
from gateway.core.otp import OtpSettings
from gateway.core.retention import RetentionSettings
from gateway.core.ssrf import parse_networks
from providers.http.settings import HttpSettings as HttpProviderSettings
from providers.smpp.settings import SmppSettings
from routing import RouteConfigError, RouteTable, load_table


class Secret:
    """A string that never prints: repr and str show stars."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def from_config(cls, value: str) -> Secret:
        return cls(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch: int = 1000
    body_timeout_s: float = 10.0  # the whole body, once the head is in: 408 after that
    idle_timeout_s: float = 15.0  # a connection without a whole request head (slowloris)
    linger_s: float = 1.0  # reading what follows a refused body, before closing
    tls_cert: Path | None = None  # PEM certificate chain: the API listens with HTTPS only
    tls_key: Path | None = None  # its PEM private key
    access_log: bool = False  # one line per request on gateway.access, numbers masked

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("http: tls_cert and tls_key go together")


@dataclass(frozen=True)
class StoreSettings:
    database_url: Secret | None = None
    pool_size: int = 8
    batch_rows: int = 1000
    # How long a group commit waits for more requests. 0: it takes what queued while the
    # one before it ran (serial commits still group under load): at 2,000 requests/s that
    # cut the accept p99 from 76 to 40 ms against 4 ms of wait (docs/benchmarks.md).
    batch_wait_ms: float = 0.0
    pending_limit: int = 20_000  # accepted-not-yet-committed rows before the API answers 503
    migrate_on_start: bool = True
    # Message texts encrypted at rest (AES-256-GCM): base64 of 32 bytes; unset: plaintext.
    # Old keys still decrypt rows written before a rotation (gateway/adapters/text_cipher.py).
    encryption_key: Secret | None = None
    old_encryption_keys: tuple[Secret, ...] = ()

    def __post_init__(self) -> None:  # a bad key fails when the file is read, naming it
        if self.encryption_key is not None:
            decode_key(self.encryption_key.reveal(), "encryption_key")
        for i, key in enumerate(self.old_encryption_keys):
            decode_key(key.reveal(), f"old_encryption_keys[{i}]")


@dataclass(frozen=True)
class QueueSettings:
    redis_url: Secret | None = None
    prefix: str = "smsgw"
    group: str = "dispatch"
    reclaim_idle_s: float = 60.0
    events_maxlen: int = 1_000_000
    # Queue shards (gateway/adapters/redis_queue.py); 0: one on a plain Redis, six on a
    # cluster (redis+cluster:// URL). Every process must use the same number.
    shards: int = 0


@dataclass(frozen=True)
class DispatchSettings:
    read_batch: int = 500
    lease_s: float = 60.0
    sweep_interval_s: float = 1.0
    enqueue_grace_s: float = 10.0
    max_attempts: int = 20
    retry_base_s: float = 2.0
    retry_cap_s: float = 300.0
    weights: tuple[int, ...] = (16, 4, 1)  # otp, transactional, bulk
    first_bind_wait_s: float = 5.0  # at start; a provider still down then binds in the background
    # A submitted message whose receipt never comes ends ``expired`` (error ``no_receipt``)
    # this long after submission, or ``receipt_grace_s`` after its own validity ran out.
    receipt_timeout_s: float = 48 * 3600.0
    receipt_grace_s: float = 600.0


@dataclass(frozen=True)
class WebhookSettings:
    concurrency: int = 64
    timeout_s: float = 10.0
    batch: int = 500
    poll_interval_s: float = 0.5
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0
    give_up_after_h: float = 26.0
    # Networks callbacks may reach although private, loopback or link-local (SSRF guard,
    # gateway/core/ssrf.py); empty: public addresses only.
    allow_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_networks(self.allow_networks)  # a bad entry fails at start, naming it


@dataclass(frozen=True)
class ProviderConfig:
    """A provider as the gateway sees it: a transport's settings, its TPS contract, and
    (when the file has no ``[[routes]]``) a simple route: its prefixes at one price."""

    name: str
    type: Literal["smpp", "http"]
    smpp: SmppSettings | None = None
    http: HttpProviderSettings | None = None
    price_per_part: Decimal | None = None
    prefixes: tuple[str, ...] = ("+",)
    tps: float | None = None  # shared by every process (a bucket in Redis)
    tps_burst: float | None = None  # tokens that may go at once; default 50 ms worth
    # How the provider writes message ids: 0 = auto (exact form first, then hex/decimal),
    # else the base of its submit_sm_resp ids and of its receipts' ids (e.g. 16 and 10).
    submit_id_base: int = 0
    receipt_id_base: int = 0

    def __post_init__(self) -> None:
        if (self.tps is not None and self.tps <= 0) or (
            self.tps_burst is not None and self.tps_burst <= 0
        ):
            raise ValueError("tps and tps_burst must be positive")
        bases = {self.submit_id_base, self.receipt_id_base}
        if not (bases == {0} or bases <= {10, 16}):
            raise ValueError("submit_id_base and receipt_id_base: both 0, or each 10 or 16")


LogFormat = Literal["text", "json"]


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".smsgw")
    default_region: str = "RU"
    max_parts: int = 10
    log_level: str = "INFO"
    log_format: LogFormat = "text"  # json: one event per line (smsgw.log_json)
    http: HttpSettings = field(default_factory=HttpSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    inbound: InboundSettings = field(default_factory=InboundSettings)
    api_limits: ApiLimitSettings = field(default_factory=ApiLimitSettings)
    otp: OtpSettings = field(default_factory=OtpSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    otp_secret: Secret | None = None  # the OTP hash pepper; env SMSGW_OTP_SECRET
    providers: tuple[ProviderConfig, ...] = ()
    routing: RouteTable = field(default_factory=lambda: RouteTable.build(()))
    config_path: Path | None = None  # where these came from: reloads read it again
    # The consumers' own tables ([admin], …), raw: each consumer validates its own.
    modules: Mapping[str, Any] = field(default_factory=dict)

    @property
    def database_url(self) -> str | None:
        url = self.store.database_url
        return url.reveal() if url else None

    @property
    def redis_url(self) -> str | None:
        url = self.queue.redis_url
        return url.reveal() if url else None


_PROVIDER_KEYS = frozenset(
    {
        "type",
        "price_per_part",
        "prefixes",
        "tps",
        "tps_burst",
        "submit_id_base",
        "receipt_id_base",
    }
)


_TRANSPORTS: Mapping[str, type[Any]] = {"smpp": SmppSettings, "http": HttpProviderSettings}


def _provider(data: Any, key: str) -> ProviderConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(key, "must be a table")
    kind = data.get("type", "smpp")
    if kind not in _TRANSPORTS:
        raise ConfigError(f"{key}.type", "one of smpp, http")
    own = {k: v for k, v in data.items() if k in _PROVIDER_KEYS}
    transport = build(
        _TRANSPORTS[kind], {k: v for k, v in data.items() if k not in _PROVIDER_KEYS}, key
    )
    fields: dict[str, Any] = {"name": transport.name, "type": kind, kind: transport}
    hints = typing.get_type_hints(ProviderConfig)
    for name, value in own.items():
        if name != "type":
            fields[name] = convert(hints[name], value, f"{key}.{name}")
    try:
        return ProviderConfig(**fields)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


MODULE_SECTIONS = ("admin", "helpdesk", "portal", "fulfilment")


def from_mapping(data: Mapping[str, Any]) -> Settings:
    """Settings from a parsed TOML document; raises ConfigError naming the bad key."""
    top = dict(data)
    modules = {name: top.pop(name) for name in MODULE_SECTIONS if name in top}
    raw_providers = top.pop("providers", [])
    routing = {"routes": top.pop("routes", None), "routing": top.pop("routing", {})}
    if not isinstance(raw_providers, list):
        raise ConfigError("providers", "must be a list of tables ([[providers]])")
    settings = build(Settings, top, "")
    providers = tuple(_provider(p, f"providers[{i}]") for i, p in enumerate(raw_providers))
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigError("providers", "provider names must be unique")
    table = route_table(routing, providers)
    return dataclasses.replace(settings, providers=providers, routing=table, modules=modules)


def route_table(data: Mapping[str, Any], providers: tuple[ProviderConfig, ...]) -> RouteTable:
    """The ``[[routes]]`` of the file; without any, each provider's prefixes at its price."""
    if data.get("routes") is None:
        data = {**data, "routes": [_default_route(p) for p in providers]}
    try:
        return load_table(data, [p.name for p in providers])
    except RouteConfigError as exc:
        raise ConfigError(exc.key, exc.message) from None


def _default_route(provider: ProviderConfig) -> dict[str, Any]:
    if provider.price_per_part is None:
        raise ConfigError(
            f"providers.{provider.name}.price_per_part", "required when there are no [[routes]]"
        )
    price = str(provider.price_per_part)
    return {"provider": provider.name, "prefixes": list(provider.prefixes), "price_per_part": price}


def load(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read the TOML file (if any), then apply the environment's overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    settings = with_env(from_mapping(data), env)
    return dataclasses.replace(settings, config_path=path)


def with_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    if env.get("SMSGW_OTP_SECRET"):
        settings = dataclasses.replace(settings, otp_secret=Secret(env["SMSGW_OTP_SECRET"]))
    store, queue, http = settings.store, settings.queue, settings.http
    if env.get("DATABASE_URL"):
        store = dataclasses.replace(store, database_url=Secret(env["DATABASE_URL"]))
    if env.get("REDIS_URL"):
        queue = dataclasses.replace(queue, redis_url=Secret(env["REDIS_URL"]))
    if env.get("SMSGW_HTTP_PORT"):
        http = dataclasses.replace(http, port=int(env["SMSGW_HTTP_PORT"]))
    if env.get("SMSGW_LOG_FORMAT"):
        log_format = convert(LogFormat, env["SMSGW_LOG_FORMAT"], "SMSGW_LOG_FORMAT")
        settings = dataclasses.replace(settings, log_format=log_format)
    data_dir = Path(env["SMSGW_DATA_DIR"]) if env.get("SMSGW_DATA_DIR") else settings.data_dir
    return dataclasses.replace(settings, store=store, queue=queue, http=http, data_dir=data_dir)
