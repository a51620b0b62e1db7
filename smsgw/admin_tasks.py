"""One-shot tasks of the CLI: migrations, clients. Each opens and closes its own pool."""

from __future__ import annotations

from typing import Any

from gateway.adapters import client_store, pg
from gateway.settings import Settings
from smsgw.runner import server_urls


async def migrate(settings: Settings) -> list[str]:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            return await pg.migrate(pool)


async def add_client(
    settings: Settings, name: str, callback_url: str | None, sender: str | None
) -> dict[str, Any]:
    with server_urls(settings, stop_adopted=False) as urls:
        async with pg.open_pool(urls.database_url, 2) as pool:
            await pg.migrate(pool)
            created = await client_store.create(pool, name, callback_url, sender)
    return {
        "client_id": created.client.id,
        "name": name,
        "api_key": created.api_key,
        "webhook_secret": created.webhook_secret,
    }
