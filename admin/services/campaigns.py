"""Campaign questions the pages ask: the dry run (who would get what, at what cost) and
the live progress of a run. Read-only; the runner does the sending."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from admin.adapters import audience_store, campaign_store, template_store
from admin.adapters.campaign_store import CampaignRow
from admin.core import campaigns as core
from admin.core.audience import SqlWhere, compile_where
from admin.core.templates import unit_price
from providers.encoding import analyse

if TYPE_CHECKING:
    from admin.app import Admin

SAMPLE = 100  # contacts rendered to size the texts and price the numbers
FAILED = ("undeliverable", "expired", "rejected", "failed")


class Missing(LookupError):
    """An audience or template the campaign names is gone; ``field`` says which."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class DryRun:
    audience: int  # contacts the audience selects
    estimate: core.Estimate  # the eligible ones: subscribed, with consent, under the cap
    unit_price: Decimal | None  # the dearest part price among the sampled numbers
    zones: tuple[str, ...]
    open_zones: tuple[str, ...]  # inside the send window now


async def dry_run(admin: Admin, spec: core.Spec, now: datetime) -> DryRun:
    pool = admin.pool
    audience = await audience_store.get_audience(pool, spec.audience_id)
    if audience is None:
        raise Missing("no such audience", "audience_id")
    where = compile_where(audience.query, now.date())
    eligible = campaign_store.eligible(where.sql, where.params, spec.cap, now)
    sample = await audience_store.sample_contacts(pool, SqlWhere(*eligible), SAMPLE)
    price = _dearest(admin, spec, [c.phone for c in sample])
    parts = await _parts(admin, spec, [c.fields for c in sample])
    zones = tuple(sorted(await campaign_store.zones(pool, eligible)))
    return DryRun(
        audience=await campaign_store.count(pool, (where.sql, where.params)),
        estimate=core.estimate(
            await campaign_store.count(pool, eligible), spec.variants, parts, price or Decimal(0)
        ),
        unit_price=price,
        zones=zones,
        open_zones=tuple(sorted(core.open_zones(spec.window, now, zones))),
    )


def _dearest(admin: Admin, spec: core.Spec, phones: list[str]) -> Decimal | None:
    table = admin.gateway_settings.routing
    prices = [unit_price(table, phone, "bulk", spec.sender) for phone in phones]
    found = [p for p in prices if p is not None]
    return max(found) if found else None


async def _parts(admin: Admin, spec: core.Spec, samples: list[Mapping[str, Any]]) -> dict[int, int]:
    """Parts per template: the most any sampled contact's text needs (an estimate that
    does not come in under the bill), with short links and transliteration as sent."""
    found: dict[int, int] = {}
    for variant in spec.variants:
        row = await template_store.get_template(admin.pool, variant.template_id)
        if row is None:
            raise Missing("no such template", f"variants[{ord(variant.name) - 65}].template_id")
        compiled = core.compile_variant(
            variant, row.text, row.defaults, row.transliterate, row.track_links
        )
        found[variant.template_id] = max(
            (_parts_of(compiled, fields, admin.settings.public_url) for fields in samples or [{}]),
        )
    return found


def _parts_of(compiled: core.Compiled, fields: Mapping[str, Any], base: str) -> int:
    codes = ["x" * 8] * compiled.link_count
    return analyse(core.personal_text(compiled, fields, codes, base).text).parts


@dataclass(frozen=True, slots=True)
class Progress:
    row: CampaignRow
    statuses: Mapping[str, int]  # of this run's messages, as the events consumer moves them
    variants: Mapping[str, Mapping[str, int]]

    def to_json(self) -> dict[str, Any]:
        s, row = self.statuses, self.row
        return {
            "state": row.state.value,
            "run_id": row.run_id,
            "total": row.total,
            "accepted": sum(s.values()),
            "queued": s.get("accepted", 0) + s.get("queued", 0),
            "sent": s.get("submitted", 0),
            "delivered": s.get("delivered", 0),
            "failed": sum(s.get(k, 0) for k in FAILED),
            "rejected": row.rejected,
            "statuses": dict(s),
            "variants": {k: dict(v) for k, v in self.variants.items()},
            "actions": [a.value for a in core.allowed_actions(row.state) if a in USER_ACTIONS],
            "next_run_at": row.next_run_at.isoformat() if row.next_run_at else None,
        }


USER_ACTIONS = frozenset(
    {core.Action.SCHEDULE, core.Action.UNSCHEDULE, core.Action.PAUSE, core.Action.RESUME,
     core.Action.CANCEL}
)  # fmt: skip


async def progress(admin: Admin, campaign_id: int) -> Progress | None:
    row = await campaign_store.get(admin.pool, campaign_id)
    if row is None:
        return None
    statuses = await campaign_store.progress(admin.pool, campaign_id, row.run_id)
    variants = await campaign_store.variant_counts(admin.pool, campaign_id)
    return Progress(row, statuses, variants)
