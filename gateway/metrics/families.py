"""Every counter and histogram the gateway exports, declared once (docs/operations.md).

Labels are bounded: priorities, statuses, provider names from the settings, error codes
from our error tree or a provider's status table (``code_label`` keeps a code short and
plain, or calls it ``other``). No label ever holds a number, a text or a client's id.
"""

from __future__ import annotations

import re

from gateway.core.masking import scrub
from gateway.metrics.recorder import Counter, Histogram

# Seconds. A submit answer takes milliseconds; a message's trip to its receipt, minutes.
SUBMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TRIP_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0
)  # fmt: skip

MESSAGES_ACCEPTED = Counter(
    "smsgw_messages_accepted_total", "messages accepted by the API (committed)", ("priority",)
)
MESSAGES = Counter(
    "smsgw_messages_total",
    "committed state changes: submitted, delivered, undeliverable, expired, rejected, failed",
    ("status", "provider"),
)
SUBMIT_LATENCY = Histogram(
    "smsgw_submit_latency_seconds",
    "time a provider took to answer a submission (submit_sm → submit_sm_resp, or HTTP)",
    ("provider",),
    SUBMIT_BUCKETS,
)
QUEUE_LATENCY = Histogram(
    "smsgw_queue_latency_seconds",
    "accepted → submitted (the provider took it), per message",
    ("provider",),
    TRIP_BUCKETS,
)
RECEIPT_LATENCY = Histogram(
    "smsgw_receipt_latency_seconds",
    "accepted → the receipt's final state (delivered or undeliverable), per message",
    ("provider", "status"),
    TRIP_BUCKETS,
)
RECEIPTS = Counter(
    "smsgw_receipts_total",
    "final receipts: matched to a part, early (kept until the submit response), refused "
    "(writer full: the provider redelivers), and intermediate ones (not stored)",
    ("result",),
)
SUBMIT_ERRORS = Counter(
    "smsgw_submit_errors_total",
    "failed submissions by kind (throttled, temporary, permanent) and the provider's code",
    ("provider", "kind", "code"),
)
API_REFUSED = Counter(
    "smsgw_api_refused_total",
    "API requests refused with 429, by the limit (ip_rps, api_key_rps, tps, daily_quota, otp_*)",
    ("reason",),
)
API_ERRORS = Counter(
    "smsgw_api_errors_total", "API error responses by HTTP status and code", ("status", "code")
)
WEBHOOK_DELIVERIES = Counter(
    "smsgw_webhook_deliveries_total",
    "status callback attempts: delivered (2xx), or retry (anything else; tried again later)",
    ("result",),
)
COST = Counter(
    "smsgw_cost_total",
    "price of the messages submitted, in the route table's currency",
    ("provider",),
)
RETENTION_RUNS = Counter("smsgw_retention_runs_total", "retention passes completed")
RETENTION_ROWS = Counter(
    "smsgw_retention_rows_total", "rows removed or erased by retention", ("kind",)
)
SWEEPER_REQUEUED = Counter(
    "smsgw_sweeper_requeued_total",
    "messages the sweeper put back into the queue, by why",
    ("reason",),
)

# ESME_RTHROTTLED, ESME_RMSGQFUL (providers/smpp/status.py), HTTP 429 (providers/http/parse.py)
THROTTLE_CODES = frozenset({"0x00000058", "0x00000014", "http_status:429"})
_PLAIN_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,40}")


def code_label(code: str | None) -> str:
    """A provider's error code as a label: short and plain, else ``other`` (bounded)."""
    if not code:
        return "none"
    plain = _PLAIN_CODE.fullmatch(code) and (len(code) < 6 or not code.isdigit())
    return code if plain and scrub(code) == code else "other"


def count_submit_error(provider: str, code: str, permanent: bool) -> None:
    kind = "permanent" if permanent else "throttled" if code in THROTTLE_CODES else "temporary"
    SUBMIT_ERRORS.inc(provider, kind, code_label(code))
