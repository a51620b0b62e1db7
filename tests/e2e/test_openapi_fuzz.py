"""schemathesis against the live gateway's own /v1/openapi.json: no input yields a 5xx.

The document is fetched from the running gateway (real PostgreSQL, Redis and SMSC
simulator), and every operation in it is fuzzed twice: with requests the document allows
(positive) and with requests it forbids (negative: wrong types, missing fields, bad
bodies). Each answer must be under 500; each 4xx must be the JSON error shape naming a
field, where a field is to blame; and each answer must match the document (status code
documented, body conforming), so the document cannot drift from the code. schemathesis
calls over real TCP with ``requests`` in a worker thread while the gateway serves on the
test's event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Api

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
# Errors that concern the request as a whole, not one of its fields.
_WHOLE_REQUEST = {"not_found", "method_not_allowed", "rate_limited", "overloaded"}


@dataclass
class Run:
    base_url: str
    headers: dict[str, str]
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def check_answer(case: Any, response: requests.Response) -> None:
    """No 5xx; a 4xx is ``{"error": {"code", "message", "field"}}``; the document holds."""
    where = f"{case.method} {case.formatted_path} → {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:300]}"
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict), f"{where}: {body}"
        errors = body.get("rejected") or [body.get("error")]  # a batch names each item's
        for error in errors:
            assert isinstance(error, dict), f"{where}: {body}"
            assert isinstance(error["code"], str) and isinstance(error["message"], str), where
            if error["code"] not in _WHOLE_REQUEST:
                assert isinstance(error.get("field"), str), f"{where}: no field in {error}"
    case.validate_response(response, checks=CHECKS)


def fuzz(run: Run, strategy: st.SearchStrategy[Any], examples: int, mode: GenerationMode) -> None:
    """Positive cases carry our key; negative ones keep schemathesis' garbage keys too."""
    session = requests.Session()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # explicit: the document's examples
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            case.headers = {**(case.headers or {}), **run.headers}
            _with_real_numbers(case, real=run.cases % 2 == 0)
        response = case.call(
            base_url=run.base_url, session=session, headers=run.headers, timeout=15
        )
        run.cases += 1
        run.statuses[response.status_code] += 1
        run.by_operation[f"{mode.value} {case.operation.label} {response.status_code}"] += 1
        try:
            check_answer(case, response)
        except (Exception, FailureGroup) as exc:  # FailureGroup is a BaseExceptionGroup
            run.failures.append(f"{case.method} {case.operation.path}: {_short(exc)}")

    try:
        one()
    except Unsatisfiable:
        pass  # negative mode on an operation with nothing to get wrong (GET /v1/health)
    finally:
        session.close()


def _with_real_numbers(case: Any, real: bool) -> None:
    """Half the positive cases get a real number in every ``to``: a random string almost
    never is one, and the accept path (commit, queue, SMSC) deserves fuzzing too."""
    body = case.body if isinstance(case.body, dict) else {}
    listed = body.get("messages")
    items: list[Any] = listed if isinstance(listed, list) else [body]
    for item in items if real else []:
        if isinstance(item, dict) and "to" in item:
            item["to"] = "+79211234567"


def _short(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " | ".join(line for line in lines[:7] if not line.startswith("["))[:200]


async def fuzz_the_api(api: Api, examples: int) -> Run:
    async with api.http.get("/v1/openapi.json") as response:
        document = await response.json()
    schema = schemathesis.openapi.from_dict(document)
    port = api.gateway.settings.http.port
    key = api.client.api_key
    run = Run(f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"})
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # raises on an invalid schema
        for mode in GenerationMode:
            strategy = operation.as_strategy(generation_mode=mode)
            await asyncio.to_thread(fuzz, run, strategy, examples, mode)
    return run


# The gateway draws backoff jitter from `random` on the loop thread while hypothesis draws
# cases in the worker: hypothesis sees the global state move and blames the strategy.
RANDOM_RACE = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)


@RANDOM_RACE
async def test_no_request_yields_a_5xx(api: Api) -> None:
    run = await fuzz_the_api(api, examples=int(os.environ.get("SMSGW_API_FUZZ_EXAMPLES", "10")))
    print(f"\nschemathesis: {run.cases} cases, statuses {dict(sorted(run.statuses.items()))}")
    print("\n".join(f"  {n:5d} {key}" for key, n in sorted(run.by_operation.items())))
    assert run.failures == [], "\n".join(sorted(set(run.failures)))
    assert run.cases > 0 and not any(status >= 500 for status in run.statuses)


@pytest.mark.slow
@pytest.mark.timeout(900)
@RANDOM_RACE
async def test_no_request_yields_a_5xx_long_run(api: Api) -> None:
    run = await fuzz_the_api(api, examples=300)
    print(f"\nschemathesis: {run.cases} cases, statuses {dict(sorted(run.statuses.items()))}")
    print("\n".join(f"  {n:5d} {key}" for key, n in sorted(run.by_operation.items())))
    assert run.failures == [], "\n".join(run.failures[:20])
