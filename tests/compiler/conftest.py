"""Fixtures for tests/compiler: real Dagster instances (in memory, or on disk for multiprocess runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, instance_for_test


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """An ephemeral (in-memory) Dagster instance for ``execute_in_process``."""
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def disk_instance(tmp_path) -> Iterator[DagsterInstance]:
    """A Dagster instance on disk (SQLite storage under tmp_path), needed by multiprocess runs."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as inst:
        yield inst
