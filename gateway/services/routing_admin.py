"""The routing override shared by every gateway process: routes, prices, providers off.

Theory of operation. Operators change routing through the API
(``gateway/http/routing_admin_handlers.py``); the change is checked here with the
gateway's route parser, then stored in PostgreSQL with a new version
(``adapters/routing_admin_store``). Every process polls that version (one indexed
one-row read every ``interval`` seconds) and, when it moved, loads the override and
applies it through the same hook as a config file reload: the effective table is the
override's when there is one, else the file's. A stored document this process cannot
parse (say another machine runs a provider this one does not) is logged and left out;
the running table stays. A disabled provider is routed as if it were down: its traffic
fails over by the routing rules, or waits; its binds stay up for receipts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import aiopg

from gateway.adapters import routing_admin_store as store
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.routing_admin_store import RoutingOverride
from gateway.core.errors import Conflict, NotFound, ValidationError
from gateway.core.routing_override import parse_override, to_document
from routing import ProviderState, RouteConfigError, RouteTable

log = logging.getLogger("gateway.routing_admin")

Apply = Callable[[RouteTable, frozenset[str]], None]


class RoutingAdmin:
    def __init__(
        self,
        pool: aiopg.Pool,
        providers: Collection[str],
        file_table: RouteTable,
        apply: Apply,
        interval: float = 2.0,
    ) -> None:
        self._pool = pool
        self._providers = tuple(providers)
        self._file_table = file_table
        self._apply = apply
        self._interval = interval
        self.current: RoutingOverride = store.NONE
        self._table: RouteTable | None = None  # the override's, when it has one that parses
        self._refreshing = asyncio.Lock()

    @property
    def table(self) -> RouteTable:
        return self._table or self._file_table

    @property
    def disabled(self) -> frozenset[str]:
        return self.current.disabled

    def file_reloaded(self, table: RouteTable) -> None:
        """The config file's table changed: it applies unless an override is on top.
        Raises RouteConfigError (the reload is refused) when the override no longer fits."""
        override, document = self._table, self.current.document
        if override is not None and document is not None:  # rebuilt on the file's new policy
            override = parse_override(document, self._providers, table)
        self._file_table, self._table = table, override
        self._apply(self.table, self.disabled)

    async def run(self) -> None:
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            try:
                await self.refresh()
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("routing override not read (database unavailable): %r", exc)
            await asyncio.sleep(self._interval)  # a poll: another process's change has no event

    async def refresh(self) -> bool:
        """Apply the stored override if its version moved; True when it did."""
        async with self._refreshing:  # the poll and a change made here: one at a time
            return await self._refresh()

    async def _refresh(self) -> bool:
        if await store.version(self._pool) == self.current.version:
            return False
        found = await store.load(self._pool)
        table = None if found.document is None else self._parse_or_keep(found.document)
        self.current, self._table = found, table
        self._apply(self.table, self.disabled)
        log.info("routing override version %d applied", found.version)
        return True

    def _parse_or_keep(self, document: Mapping[str, Any]) -> RouteTable | None:
        try:
            return self._parse(document)
        except RouteConfigError as exc:
            log.error("routing override not applied, the running table stays: %s", exc)
            return self._table

    def _parse(self, document: Any) -> RouteTable:
        return parse_override(document, self._providers, self._file_table)

    async def put(self, document: Any, expected: int | None, by: str | None) -> int:
        """Check and store a routes document (None: back to the file's); applied here at
        once, elsewhere within a poll. Raises ValidationError naming the field."""
        stored = None
        if document is not None:
            try:
                stored = to_document(self._parse(document))  # prices as exact strings
            except RouteConfigError as exc:
                raise ValidationError(exc.message, f"document.{exc.key}") from None
        version = await store.put_document(self._pool, stored, expected, by)
        if version is None:
            raise Conflict("the routing changed since it was read; reload it", "version")
        await self.refresh()
        return version

    async def set_disabled(self, name: str, disabled: bool, by: str | None) -> int:
        if name not in self._providers:
            raise NotFound(f"no provider {name!r} is configured", "name")
        version = await store.set_disabled(self._pool, name, disabled, by)
        await self.refresh()
        return version

    def describe(self) -> dict[str, Any]:
        found = self.current
        return {
            "version": found.version,
            "source": "override" if self._table is not None else "file",
            "document": found.document,
            "effective": to_document(self.table),
            "file": to_document(self._file_table),
            "disabled": sorted(found.disabled),
            "providers": list(self._providers),
            "updated_at": found.updated_at.isoformat() if found.updated_at else None,
            "updated_by": found.updated_by,
        }


def without_disabled(
    states: Mapping[str, ProviderState], disabled: Collection[str]
) -> dict[str, ProviderState]:
    """Provider states with the disabled ones down (what ``choose`` should see)."""
    down = ProviderState(up=False)
    return {name: down if name in disabled else state for name, state in states.items()}
