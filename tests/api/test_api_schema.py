"""Schemathesis against the live ``/openapi.json`` with a viewer, an operator and an admin token: generated
requests never get a 5xx answer, and every JSON error answer has the ``{error, message, details}`` shape.

Every operation is fuzzed (Hypothesis, derandomized: the same cases on every run) with schema-conforming and with
non-conforming data, ``EXAMPLES[role]`` examples each per role: the admin reaches every operation's validation and
storage, the weaker roles mostly their refusals (auth comes before the body) and every read. The budget keeps the
test around a minute on 2 shared cores. Generated path ids never name a stored workflow or execution, so execute /
resume / cancel / pause answer 404 and start no long work; ``POST /api/workflows`` may store the documented example
(``hello``, two no-op nodes), which reloads the code location once. (Schemathesis' own pytest plugin is not used:
its lazy loader does not run under pytest 9.)
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from _api_stack import TOKENS, ApiStack
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
EXAMPLES = {"viewer": 6, "operator": 6, "admin": 15}


def fuzz(operation, mode: GenerationMode, role: str, calls: dict[tuple[str, str], int]) -> None:
    """``EXAMPLES[role]`` generated requests of one operation in one mode, sent with the role's token."""
    headers = {"Authorization": f"Bearer {TOKENS[role]}"}

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES[role],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same cases on every run: a CI failure reproduces
    )
    def exercise(case) -> None:
        response = case.call(headers=headers, timeout=60)
        calls[(role, case.operation.label)] = calls.get((role, case.operation.label), 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400 and response.headers.get("content-type") == "application/json":
            assert set(response.json()) == {"error", "message", "details"}, response.text

    try:
        exercise()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_generated_requests_get_no_server_error(api: ApiStack) -> None:
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    schema = schemathesis.openapi.from_url(f"{api.url_a}/openapi.json", headers=admin, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18, [op.label for op in operations]
    calls: dict[tuple[str, str], int] = {}
    started = time.monotonic()
    for role in EXAMPLES:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode, role, calls)
    assert set(calls) == {(role, op.label) for role in EXAMPLES for op in operations}
    print(f"schemathesis: {sum(calls.values())} requests, {len(operations)} operations, {len(EXAMPLES)} roles, "
          f"{time.monotonic() - started:.0f}s")  # fmt: skip
