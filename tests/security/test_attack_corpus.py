"""The attack corpus: hostile definitions, each refused with the problem code it must name, never a traceback.

Every file of ``attacks/`` (and every generated case below) is tried the three ways a definition arrives: as a
file of ``workflow_defs/`` (``maestro defs validate`` / sync: the repository's policy), posted to
``POST /api/workflows`` by an admin (the API's policy: 422, nothing stored), and to ``POST
/api/workflows/validate`` by a viewer. Settings are the defaults a user gets (the example executors not
allowed), so the corpus also proves what the defaults refuse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _defs import chain, definition
from fastapi.testclient import TestClient

from maestro_dagster.api.app import create_app
from maestro_dagster.db import migrate
from maestro_dagster.db.models import WorkflowDefinition
from maestro_dagster.db.session import get_db
from maestro_dagster.policy import ORIGIN_REPOSITORY, DefinitionPolicy
from maestro_dagster.settings import Settings, get_settings
from maestro_dagster.spec import load_definition_file, validate_definition, validate_loaded

ATTACKS = Path(__file__).resolve().parent / "attacks"
TOKENS = {"viewer": "corpus-viewer", "admin": "corpus-admin"}
BOUND_SECONDS = 20  # generous on two shared cores: the point is "not minutes", the benchmark has the figures

# file -> (code the repository's policy must name, code the API's policy must name); None: accepted there.
FILE_CASES: dict[str, tuple[str | None, str]] = {
    "exec_builtin_by_path.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_registry_reexport.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_registry_table.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_sql_by_path.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_through_import.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_reexported_class.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_private_helper.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_python_builtins.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "exec_importlib.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "examples_write_file.yaml": ("executor_not_allowed", "executor_not_allowed"),
    "api_command.yaml": (None, "executor_not_allowed"),
    "api_sql.yaml": (None, "executor_not_allowed"),
    "condition_comprehension.yaml": ("bad_condition", "bad_condition"),
    "condition_dunder.yaml": ("bad_condition", "bad_condition"),
    "condition_lambda.yaml": ("bad_condition", "bad_condition"),
    "yaml_billion_laughs.yaml": ("yaml_alias_budget", "yaml_alias_budget"),
    "yaml_deep_brackets.yaml": ("too_deep", "too_deep"),
    "json_deep_nesting.json": ("too_deep", "too_deep"),
}


def _chain(length: int, **node: Any) -> dict[str, Any]:
    nodes = {f"n{i}": dict(node) for i in range(length)}
    return definition(f"chain_{length}", nodes, chain(*nodes))


def _conditioned(condition: str) -> dict[str, Any]:
    return definition("cond", {"a": {}, "b": {"condition": condition}}, chain("a", "b"))


# name -> (document, code); the same code under both policies.
GENERATED_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "chain_10000_nodes": (_chain(10_000), "too_large"),
    "fan_out_5000_edges": (
        {
            "id": "fan",
            "nodes": {"root": {}, **{f"leaf{i}": {} for i in range(900)}},
            "edges": [{"source": "root", "target": f"leaf{i}"} for i in range(900)] * 6,
        },
        "too_large",
    ),
    "chain_deeper_than_the_limit": (_chain(600), "too_deep"),
    "condition_not_chain": (_conditioned("not " * 50_000 + "True"), "bad_condition"),
    "condition_long_sum": (_conditioned("+".join(["1"] * 200_000)), "bad_condition"),
    "condition_nested_calls": (_conditioned("abs(" * 40 + "1" + ")" * 40), "bad_condition"),
    "config_too_large": ({"id": "big", "nodes": {"a": {"config": {"blob": "x" * 70_000}}}}, "too_large"),
    "config_nested_too_deep": (
        {"id": "nest", "nodes": {"a": {"config": json.loads('{"k":' * 60 + "1" + "}" * 60)}}},
        "too_deep",
    ),
}


@pytest.fixture
def defaults(tmp_path, monkeypatch) -> Settings:
    """The settings a user gets out of the box (the tests' own opt-in to the examples removed)."""
    monkeypatch.delenv("MAESTRO_EXECUTOR_ALLOWLIST", raising=False)
    monkeypatch.setenv("MAESTRO_DATABASE_URL", f"sqlite:///{tmp_path / 'corpus.db'}")
    monkeypatch.setenv("MAESTRO_API_TOKENS", json.dumps({t: role for role, t in TOKENS.items()}))
    get_settings.cache_clear()
    settings = get_settings()
    migrate.upgrade(settings)
    return settings


@pytest.fixture
def app_client(defaults: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(defaults), raise_server_exceptions=False) as client:
        yield client


def _codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e["code"] for e in errors]


def _post(client: TestClient, path: str, role: str, body: bytes) -> Any:
    headers = {"Authorization": f"Bearer {TOKENS[role]}", "Content-Type": "application/json"}
    return client.post(path, content=body, headers=headers)


def _assert_refused_by_api(client: TestClient, body: bytes, code: str, case: str) -> None:
    created = _post(client, "/api/workflows", "admin", body)
    assert created.status_code == 422, (case, created.status_code, created.text[:500])
    assert code in _codes(created.json()["details"]["errors"]), (case, created.text[:500])
    checked = _post(client, "/api/workflows/validate", "viewer", body)
    assert checked.status_code in (200, 422), (case, checked.status_code, checked.text[:500])
    answer = checked.json()
    errors = answer["errors"] if checked.status_code == 200 else answer["details"]["errors"]
    assert checked.status_code == 422 or answer["valid"] is False, case
    assert code in _codes(errors), (case, checked.text[:500])


def _nothing_stored(settings: Settings) -> None:
    with get_db(settings) as session:
        assert session.query(WorkflowDefinition).count() == 0


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_attack_file_is_refused_with_its_code(name: str, defaults: Settings, app_client: TestClient) -> None:
    repository_code, api_code = FILE_CASES[name]
    started = time.monotonic()
    policy = DefinitionPolicy.for_origin(defaults, ORIGIN_REPOSITORY)
    report = validate_loaded(load_definition_file(ATTACKS / name, policy.limits), policy)
    if repository_code is None:
        assert report.ok, report.summary()
    else:
        assert repository_code in report.codes, (name, report.summary())
        assert all(problem.message for problem in report.errors)
    assert time.monotonic() - started < BOUND_SECONDS

    if name.endswith(".json"):
        body = (ATTACKS / name).read_bytes()
    else:
        loaded = load_definition_file(ATTACKS / name, policy.limits)
        if loaded.data is None:  # a YAML-only attack: it never reaches the API as JSON
            return
        body = json.dumps(loaded.data).encode()
    _assert_refused_by_api(app_client, body, api_code, name)
    _nothing_stored(defaults)


@pytest.mark.parametrize("name", sorted(GENERATED_CASES))
def test_generated_attack_is_refused_with_its_code(name: str, defaults: Settings, app_client: TestClient) -> None:
    document, code = GENERATED_CASES[name]
    started = time.monotonic()
    report = validate_definition(document, policy=DefinitionPolicy.for_origin(defaults, ORIGIN_REPOSITORY))
    assert code in report.codes, (name, report.summary()[:1000])
    assert time.monotonic() - started < BOUND_SECONDS
    body = json.dumps(document).encode()
    if len(body) <= defaults.api_max_body_bytes:
        _assert_refused_by_api(app_client, body, code, name)
    else:  # larger than a request may be: refused before it is read
        assert _post(app_client, "/api/workflows", "admin", body).status_code == 413
    _nothing_stored(defaults)
