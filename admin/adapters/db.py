"""The admin's tables (schema ``admin``): its migrations, applied with the gateway's migrator."""

from __future__ import annotations

import aiopg

from gateway.adapters import pg

PACKAGE = "admin.adapters.migrations"
BOOK = "admin_migrations"  # in public: it has to exist before the schema does


async def migrate(pool: aiopg.Pool) -> list[str]:
    return await pg.migrate(pool, PACKAGE, BOOK)
