"""One-shot tasks of the CLI: migrations, clients. Each opens and closes its own pool."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.adapters import billing_store, client_store, pg
from gateway.adapters.client_store import UNLIMITED, Terms
from gateway.settings import Settings
from smsgw.runner import server_urls


async def migrate(settings: Settings) -> list[str]:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            return await pg.migrate(pool)


async def add_client(
    settings: Settings,
    name: str,
    callback_url: str | None,
    sender: str | None,
    terms: Terms = UNLIMITED,
) -> dict[str, Any]:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            created = await client_store.create(pool, name, callback_url, sender, terms)
    return {
        "client_id": created.client.id,
        "name": name,
        "api_key": created.api_key,
        "webhook_secret": created.webhook_secret,
        "balance": None if terms.balance is None else str(terms.balance),
        "credit_limit": str(terms.credit_limit),
        "tps": terms.tps,
        "daily_quota": terms.daily_quota,
    }


async def topup(settings: Settings, name: str, amount: Decimal) -> dict[str, Any] | None:
    """Add to a client's balance; None when there is no such client."""
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            client = await client_store.by_name(pool, name)
            account = await billing_store.topup(pool, client.id, amount) if client else None
    if account is None:
        return None
    return {
        "name": name,
        "balance": str(account.balance),
        "credit_limit": str(account.credit_limit),
        "held": str(account.held),
    }
