"""The funds decision: arrival order, all or nothing, never below −credit_limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gateway.core import billing
from gateway.core.billing import Account, Item, Limits, decide, next_utc_midnight
from gateway.core.errors import GatewayError, InsufficientFunds, QuotaExceeded, RateLimited

D = Decimal


def test_requests_are_decided_in_arrival_order() -> None:
    accounts = {1: Account(D("1.00"))}
    requests = [[Item(1, D("0.60"))], [Item(1, D("0.60"))], [Item(1, D("0.40"))]]
    decision = decide(accounts, requests, set())
    assert [v.accepted for v in decision.verdicts] == [True, False, True]
    assert decision.accounts[1].balance == D("0.00")
    assert decision.verdicts[1].needed == D("0.60")
    assert decision.verdicts[1].available == D("0.40")


def test_a_request_is_refused_whole() -> None:
    decision = decide({1: Account(D("1"))}, [[Item(1, D("0.5")), Item(1, D("0.6"))]], set())
    assert not decision.verdicts[0].accepted
    assert decision.accounts[1].balance == D("1")


def test_the_credit_limit_lets_the_balance_go_below_zero_that_far() -> None:
    decision = decide(
        {1: Account(D("0"), D("1"))}, [[Item(1, D("1"))], [Item(1, D("0.01"))]], set()
    )
    assert [v.accepted for v in decision.verdicts] == [True, False]
    assert decision.accounts[1].balance == D("-1")


def test_clients_not_billed_are_always_accepted() -> None:
    decision = decide({}, [[Item(7, D("1000"))]], set())
    assert decision.verdicts[0].accepted and decision.accounts == {}


def test_duplicates_are_not_charged_again() -> None:
    stored = {(1, "known")}
    requests = [
        [Item(1, D("1"), "known")],  # stored already
        [Item(1, D("1"), "new"), Item(1, D("1"), "new")],  # twice in one request
        [Item(1, D("1"), "new")],  # accepted earlier in the batch
    ]
    decision = decide({1: Account(D("1"))}, requests, stored)
    assert all(v.accepted for v in decision.verdicts)
    assert decision.accounts[1].balance == D("0")


def test_a_refused_requests_refs_are_not_taken() -> None:
    requests = [[Item(1, D("5"), "r")], [Item(1, D("1"), "r")]]
    decision = decide({1: Account(D("1"))}, requests, set())
    assert [v.accepted for v in decision.verdicts] == [False, True]
    assert decision.accounts[1].balance == D("0")


def test_a_duplicate_passes_on_an_overdrawn_account() -> None:
    decision = decide({1: Account(D("-3"))}, [[Item(1, D("1"), "r")]], {(1, "r")})
    assert decision.verdicts[0].accepted


def test_ledger_entries_move_money_between_balance_and_held() -> None:
    held = billing.hold(1, 10, D("0.50"))
    settled = billing.settle(1, 10, D("0.50"), D("0.35"))
    assert (held.amount, held.held) == (D("-0.50"), D("0.50"))
    assert (settled.amount, settled.held) == (D("0.15"), D("-0.50"))
    assert held.amount + settled.amount == D("-0.35")
    refunded = billing.refund(1, 11, D("0.50"))
    assert refunded.amount + held.amount == 0 and refunded.held + held.held == 0


def test_next_utc_midnight() -> None:
    moscow = timezone(timedelta(hours=3))
    assert next_utc_midnight(datetime(2026, 11, 30, 1, 0, tzinfo=moscow)) == datetime(
        2026, 11, 30, tzinfo=UTC
    )
    assert next_utc_midnight(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )


def _error(error: GatewayError) -> dict[str, object]:
    body = error.to_json()["error"]
    assert isinstance(body, dict)
    return body


def test_limits_and_errors_name_the_limit() -> None:
    assert Limits().unlimited and not Limits(tps=5).unlimited
    rate = _error(RateLimited(5, 0.2))
    assert rate == rate | {"code": "rate_limited", "limit": "tps", "value": 5, "retry_after": 1}
    quota = QuotaExceeded(100, 3600.5)
    assert quota.status == 429 and _error(quota)["retry_after"] == 3601
    funds = _error(InsufficientFunds(D("1.05"), D("0.40")))
    assert funds["needed"] == "1.05" and funds["field"] == "balance"


# --- properties ------------------------------------------------------------------------
money = st.decimals(min_value=0, max_value=20, places=2)
clients = st.integers(min_value=1, max_value=3)
items = st.builds(Item, clients, money, st.one_of(st.none(), st.sampled_from("abc")))
requests_st = st.lists(st.lists(items, min_size=1, max_size=4), max_size=12)
accounts_st = st.dictionaries(
    clients, st.builds(Account, st.decimals(min_value=-5, max_value=30, places=2), money)
)


@given(accounts_st, requests_st)
def test_never_below_minus_credit_limit(
    accounts: dict[int, Account], requests: list[list[Item]]
) -> None:
    after = decide(accounts, requests, set()).accounts
    for cid, before in accounts.items():
        floor = min(before.balance, -before.credit_limit)  # an overdrawn one can only stay
        assert after[cid].balance >= floor
        assert after[cid].balance <= before.balance


@given(accounts_st, requests_st)
def test_all_or_nothing(accounts: dict[int, Account], requests: list[list[Item]]) -> None:
    """Each client is debited exactly the holds of the accepted requests (no refs here)."""
    plain = [[Item(i.client_id, i.hold) for i in r] for r in requests]
    decision = decide(accounts, plain, set())
    for cid, before in accounts.items():
        accepted = [r for r, v in zip(plain, decision.verdicts, strict=True) if v.accepted]
        charged = sum((i.hold for r in accepted for i in r if i.client_id == cid), Decimal(0))
        assert before.balance - decision.accounts[cid].balance == charged


@given(accounts_st, requests_st, st.integers(min_value=0, max_value=12))
def test_later_arrivals_never_change_earlier_verdicts(
    accounts: dict[int, Account], requests: list[list[Item]], k: int
) -> None:
    full = decide(accounts, requests, set()).verdicts
    assert decide(accounts, requests[:k], set()).verdicts == full[:k]


@given(accounts_st, requests_st)
def test_a_refusal_means_that_request_did_not_fit(
    accounts: dict[int, Account], requests: list[list[Item]]
) -> None:
    """Replaying the accepted prefix: every refused request needed more than was left."""
    decision = decide(accounts, requests, set())
    for index, verdict in enumerate(decision.verdicts):
        if not verdict.accepted:
            left = decide(accounts, requests[:index], set()).accounts
            billed = {i.client_id for i in requests[index]} & left.keys()
            assert any(_holds(requests[index], c) > left[c].available for c in billed)


def _holds(request: list[Item], client_id: int) -> Decimal:
    return sum((i.hold for i in request if i.client_id == client_id), Decimal(0))
