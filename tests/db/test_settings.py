"""Settings read from the environment: the seed's variables, the override, the embedded default, bad values."""

from __future__ import annotations

import pytest

from maestro_dagster.errors import ConfigError
from maestro_dagster.settings import load_settings, mask_url


def test_nothing_set_is_embedded_sqlite_under_home(tmp_path):
    settings = load_settings()
    assert settings.backend == "sqlite"
    assert settings.database_url.database == str((tmp_path / "home" / "maestro_workflows.db").resolve())
    assert settings.schema_name is None


def test_postgres_variables_build_a_psycopg2_url(monkeypatch):
    monkeypatch.setenv("POSTGRES_HOST", "db.internal")
    monkeypatch.setenv("POSTGRES_PORT", "6543")
    monkeypatch.setenv("POSTGRES_DB", "wf")
    monkeypatch.setenv("POSTGRES_USER", "maestro_prod")
    monkeypatch.setenv("POSTGRES_PASSWORD", "s3cret!")
    settings = load_settings()
    url = settings.database_url
    assert settings.backend == "postgresql"
    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.port, url.database, url.username, url.password) == (
        "db.internal", 6543, "wf", "maestro_prod", "s3cret!",
    )  # fmt: skip
    assert "s3cret" not in settings.masked_database_url
    assert settings.schema_name == "maestro"


def test_use_sqlite_false_alone_means_postgres_with_seed_defaults(monkeypatch):
    monkeypatch.setenv("USE_SQLITE", "false")
    url = load_settings().database_url
    assert (url.host, url.port, url.database, url.username) == ("localhost", 5432, "maestro_workflows", "maestro")


def test_use_sqlite_with_path_wins_over_postgres_vars(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTGRES_HOST", "db.internal")
    monkeypatch.setenv("USE_SQLITE", "true")
    monkeypatch.setenv("SQLITE_PATH", str(tmp_path / "x.db"))
    settings = load_settings()
    assert settings.backend == "sqlite"
    assert settings.database_url.database == str(tmp_path / "x.db")


def test_database_url_overrides_everything_and_gets_the_driver(monkeypatch):
    monkeypatch.setenv("USE_SQLITE", "true")
    monkeypatch.setenv("MAESTRO_DATABASE_URL", "postgresql://u:pw@h:5432/d")
    url = load_settings().database_url
    assert url.drivername == "postgresql+psycopg2"
    assert url.host == "h"


def test_pool_variables(monkeypatch):
    for name, value in {
        "DB_POOL_SIZE": "7",
        "DB_MAX_OVERFLOW": "3",
        "DB_POOL_TIMEOUT": "9",
        "DB_POOL_RECYCLE": "60",
    }.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.db_pool_size, s.db_max_overflow, s.db_pool_timeout, s.db_pool_recycle) == (7, 3, 9, 60)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSTGRES_PORT", "not-a-port"),
        ("USE_SQLITE", "maybe"),
        ("DB_POOL_SIZE", "0"),
        ("MAESTRO_SQL_CONNECTIONS", "[1]"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert variable in err.value.message
    assert err.value.details["variables"] == [variable]


def test_bad_database_url_is_a_config_error(monkeypatch):
    monkeypatch.setenv("MAESTRO_DATABASE_URL", "mysql://u:p@h/d")
    with pytest.raises(ConfigError, match=r"MAESTRO_DATABASE_URL.*unsupported backend"):
        _ = load_settings().database_url


def test_mask_url_hides_password():
    assert mask_url("postgresql+psycopg2://u:topsecret@h/d") == "postgresql+psycopg2://u:***@h/d"
