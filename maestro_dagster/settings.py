"""Settings: the one object read from the environment.

The original guide's variables work as documented (``POSTGRES_*``, ``USE_SQLITE``, ``SQLITE_PATH``,
``DB_POOL_*``); ``MAESTRO_DATABASE_URL`` overrides them. With nothing set, the database is an embedded
SQLite file under the project-local home (``MAESTRO_HOME``, default ``./.maestro_home``).
A bad value raises :class:`~maestro_dagster.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from maestro_dagster.errors import ConfigError

DEFAULT_HOME_DIRNAME = ".maestro_home"
DEFAULT_SQLITE_FILENAME = "maestro_workflows.db"
PG_DRIVER = "postgresql+psycopg2"
#: Secrets only the API needs. Never passed to what runs workflow definitions: run workers (so neither their step
#: processes nor node subprocesses) and the Dagster processes ``maestro dev`` starts (``without_api_secrets``).
API_SECRET_VARIABLES: tuple[str, ...] = ("MAESTRO_API_TOKENS",)


class Settings(BaseSettings):
    """Every setting, named by its environment variable."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_ignore_empty=True)

    # The original guide's variables (defaults as the original's database/config.py).
    postgres_host: str = Field("localhost", validation_alias="POSTGRES_HOST")
    postgres_port: int = Field(5432, validation_alias="POSTGRES_PORT", gt=0, lt=65536)
    postgres_db: str = Field("maestro_workflows", validation_alias="POSTGRES_DB")
    postgres_user: str = Field("maestro", validation_alias="POSTGRES_USER")
    postgres_password: str = Field("maestro_dev", validation_alias="POSTGRES_PASSWORD")
    use_sqlite: bool | None = Field(None, validation_alias="USE_SQLITE")
    sqlite_path: str | None = Field(None, validation_alias="SQLITE_PATH")
    db_pool_size: int = Field(10, validation_alias="DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(20, validation_alias="DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(30, validation_alias="DB_POOL_TIMEOUT", gt=0)
    db_pool_recycle: int = Field(3600, validation_alias="DB_POOL_RECYCLE")

    # maestro-dagster's own.
    database_url_override: str | None = Field(None, validation_alias="MAESTRO_DATABASE_URL")
    home: Path = Field(default_factory=lambda: Path.cwd() / DEFAULT_HOME_DIRNAME, validation_alias="MAESTRO_HOME")
    db_schema: str = Field("maestro", validation_alias="MAESTRO_DB_SCHEMA", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    sqlite_busy_timeout: float = Field(30, validation_alias="MAESTRO_SQLITE_BUSY_TIMEOUT", gt=0)
    sqlite_lock_wait_seconds: float = Field(120, validation_alias="MAESTRO_SQLITE_LOCK_WAIT_SECONDS", ge=0)
    defs_dir: Path = Field(Path("workflow_defs"), validation_alias="MAESTRO_DEFS_DIR")
    sync_defs_on_load: bool = Field(True, validation_alias="MAESTRO_SYNC_DEFS_ON_LOAD")
    mirror_in_run: bool = Field(True, validation_alias="MAESTRO_MIRROR_IN_RUN")
    step_start_method: Literal["forkserver", "spawn"] = Field(
        "forkserver", validation_alias="MAESTRO_STEP_START_METHOD"
    )
    executor_allowlist: str = Field("", validation_alias="MAESTRO_EXECUTOR_ALLOWLIST")
    sql_connections_json: str = Field("{}", validation_alias="MAESTRO_SQL_CONNECTIONS")
    artifacts_dir_override: Path | None = Field(None, validation_alias="MAESTRO_ARTIFACTS_DIR")
    dagster_home_override: Path | None = Field(None, validation_alias="DAGSTER_HOME")
    dagster_url: str = Field("http://127.0.0.1:3000", validation_alias="MAESTRO_DAGSTER_URL")
    dagster_ui_url_override: str | None = Field(None, validation_alias="MAESTRO_DAGSTER_UI_URL")
    api_tokens_json: str = Field("{}", validation_alias="MAESTRO_API_TOKENS")
    api_open: bool = Field(False, validation_alias="MAESTRO_API_OPEN")
    api_builtin_executors: str = Field("noop,phase,human_review,http", validation_alias="MAESTRO_API_BUILTIN_EXECUTORS")
    api_max_body_bytes: int = Field(1_048_576, validation_alias="MAESTRO_API_MAX_BODY_BYTES", ge=1024)
    api_poll_seconds: float = Field(0.5, validation_alias="MAESTRO_API_POLL_SECONDS", gt=0)
    # What a definition may reach (docs/security.md); each setting widens the default.
    http_allowed_hosts: str = Field("", validation_alias="MAESTRO_HTTP_ALLOWED_HOSTS")
    http_file_root: Path | None = Field(None, validation_alias="MAESTRO_HTTP_FILE_ROOT")
    artifact_roots_raw: str = Field("", validation_alias="MAESTRO_ARTIFACT_ROOTS")
    command_env_passthrough: str = Field("", validation_alias="MAESTRO_COMMAND_ENV")
    # Size and cost limits of one definition (policy.DefinitionLimits).
    max_nodes: int = Field(1000, validation_alias="MAESTRO_MAX_NODES", ge=1)
    max_edges: int = Field(5000, validation_alias="MAESTRO_MAX_EDGES", ge=0)
    max_depth: int = Field(500, validation_alias="MAESTRO_MAX_DEPTH", ge=1)
    max_condition_chars: int = Field(2000, validation_alias="MAESTRO_MAX_CONDITION_CHARS", ge=1)
    max_condition_depth: int = Field(32, validation_alias="MAESTRO_MAX_CONDITION_DEPTH", ge=1, le=200)
    max_config_bytes: int = Field(65536, validation_alias="MAESTRO_MAX_CONFIG_BYTES", ge=16)
    max_definition_bytes: int = Field(1_048_576, validation_alias="MAESTRO_MAX_DEFINITION_BYTES", ge=1024)
    max_nesting: int = Field(32, validation_alias="MAESTRO_MAX_NESTING", ge=2, le=200)
    max_yaml_values: int = Field(200_000, validation_alias="MAESTRO_MAX_YAML_VALUES", ge=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias="MAESTRO_LOG_LEVEL")
    # Retention (reporting.retention): the opt-in schedule of the ``maestro_retention`` job; unset, it never runs.
    retention_days: int | None = Field(None, validation_alias="MAESTRO_RETENTION_DAYS", ge=1)
    retention_cron: str = Field("30 3 * * *", validation_alias="MAESTRO_RETENTION_CRON")
    # Dagster pools (a node's ``pool:``): "gpu=2,db=4", the slots of each; a pool not named here has no limit.
    pools_raw: str = Field("", validation_alias="MAESTRO_POOLS")
    # Scale-out (maestro_dagster.distributed): the executor of a workflow that names none, and Celery's broker and
    # result backend (the run's orchestrator and every ``maestro worker`` must use the same two).
    default_executor: Literal["local", "celery"] = Field("local", validation_alias="MAESTRO_DEFAULT_EXECUTOR")
    celery_broker_url: str = Field(
        "pyamqp://guest:guest@127.0.0.1:5672//", validation_alias="MAESTRO_CELERY_BROKER_URL", min_length=1
    )
    celery_backend_url: str = Field("rpc://", validation_alias="MAESTRO_CELERY_BACKEND_URL", min_length=1)

    @field_validator("sql_connections_json")
    @classmethod
    def _check_connections(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object of name -> database URL ({exc})") from exc
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ValueError('must be a JSON object of name -> database URL, e.g. {"reports": "sqlite:///r.db"}')
        return value

    @field_validator("pools_raw")
    @classmethod
    def _check_pools(cls, value: str) -> str:
        parse_pools(value)
        return value

    @field_validator("api_tokens_json")
    @classmethod
    def _check_tokens(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object of token -> role or {{role, name}} ({exc})") from exc
        if not isinstance(parsed, dict):
            raise ValueError('must be a JSON object, e.g. {"s3cret-token": "operator"}')
        for position, entry in enumerate(parsed.values(), start=1):
            role = entry.get("role") if isinstance(entry, dict) else entry
            if role not in ("viewer", "operator", "admin"):
                raise ValueError(f"token number {position}: role must be viewer, operator or admin, not {role!r}")
        return value

    # ---- derived values -------------------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.database_url.get_backend_name() == "sqlite" else "postgresql"

    @property
    def database_url(self) -> URL:
        """The Maestro database URL: override, else the seed's variables, else embedded SQLite."""
        if self.database_url_override:
            return normalise_url(self.database_url_override, "MAESTRO_DATABASE_URL")
        postgres_named = any(
            name in self.model_fields_set
            for name in ("postgres_host", "postgres_port", "postgres_db", "postgres_user", "postgres_password")
        )
        if self.use_sqlite is True or (self.use_sqlite is None and not postgres_named):
            return URL.create("sqlite", database=str(self.sqlite_file))
        return URL.create(
            PG_DRIVER,
            username=self.postgres_user,
            password=self.postgres_password or None,
            host=self.postgres_host,
            port=self.postgres_port,
            database=self.postgres_db,
        )

    @property
    def sqlite_file(self) -> Path:
        if self.sqlite_path:
            return Path(self.sqlite_path).expanduser().resolve()
        return self.home_dir / DEFAULT_SQLITE_FILENAME

    @property
    def masked_database_url(self) -> str:
        return mask_url(self.database_url)

    @property
    def schema_name(self) -> str | None:
        """The schema our tables live in: ``MAESTRO_DB_SCHEMA`` on PostgreSQL, none on SQLite."""
        return self.db_schema if self.backend == "postgresql" else None

    @property
    def artifacts_dir(self) -> Path:
        return (self.artifacts_dir_override or self.home_dir / "artifacts").expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        return (self.dagster_home_override or self.home_dir / "dagster").expanduser().resolve()

    @property
    def dagster_ui_url(self) -> str:
        """The Dagster UI address a browser links to (``MAESTRO_DAGSTER_UI_URL``, default ``MAESTRO_DAGSTER_URL``),
        without a trailing slash."""
        return (self.dagster_ui_url_override or self.dagster_url).rstrip("/")

    @property
    def allowed_executor_prefixes(self) -> tuple[str, ...]:
        """``MAESTRO_EXECUTOR_ALLOWLIST`` read as its items (what :mod:`maestro_dagster.policy` matches on)."""
        return list_items(self.executor_allowlist)

    @property
    def api_tokens(self) -> dict[str, tuple[str, str]]:
        """token -> (role, name) from MAESTRO_API_TOKENS.

        A token without a name is named after its SHA-256 (``token-<8 hex>``), never after its own characters."""
        out = {}
        for token, entry in json.loads(self.api_tokens_json).items():
            role = entry["role"] if isinstance(entry, dict) else entry
            default_name = f"token-{hashlib.sha256(token.encode('utf-8')).hexdigest()[:8]}"
            name = entry.get("name", default_name) if isinstance(entry, dict) else default_name
            out[token] = (role, str(name))
        return out

    @property
    def api_allowed_builtins(self) -> frozenset[str]:
        return frozenset(list_items(self.api_builtin_executors))

    @property
    def artifact_roots(self) -> tuple[Path, ...]:
        """Where reported artifacts may live: the artifacts directory plus ``MAESTRO_ARTIFACT_ROOTS``."""
        extra = (Path(p.strip()).expanduser().resolve() for p in self.artifact_roots_raw.split(",") if p.strip())
        return (self.artifacts_dir, *extra)

    @property
    def sql_connections(self) -> dict[str, str]:
        return dict(json.loads(self.sql_connections_json))

    @property
    def pools(self) -> dict[str, int]:
        """``MAESTRO_POOLS`` read: pool name -> its slots."""
        return parse_pools(self.pools_raw)


POOL_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""A pool name (``MAESTRO_POOLS`` and a node's ``pool:``): 1 to 64 letters, digits, '_', '-' or '.'."""
POOL_RE = re.compile(POOL_PATTERN)
QUEUE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # a Celery queue a node or workflow names (``queue:``)
QUEUE_RE = re.compile(QUEUE_PATTERN)


def parse_pools(raw: str) -> dict[str, int]:
    """``"gpu=2,db=4"`` -> ``{"gpu": 2, "db": 4}``; ``ValueError`` naming the bad item otherwise."""
    pools: dict[str, int] = {}
    for item in list_items(raw):
        name, sep, slots = (part.strip() for part in item.partition("="))
        if not sep or not POOL_RE.match(name) or not slots.isdigit():
            raise ValueError(
                f"item {item!r}: write name=slots pairs separated by commas, e.g. 'gpu=2,db=4' (names of 1 to 64 "
                "letters, digits, '_', '-' or '.'; slots a whole number, 0 blocks the pool)"
            )
        pools[name] = int(slots)
    return pools


def list_items(raw: str | Iterable[str]) -> tuple[str, ...]:
    """The items of a list setting: a comma-separated string split at the commas (items given one by one are not
    split), each stripped, empty ones dropped. The one reading of ``MAESTRO_EXECUTOR_ALLOWLIST`` and
    ``MAESTRO_API_BUILTIN_EXECUTORS``, from the environment or from code (``ExecutorPolicy.allowing``)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(item.strip() for item in items if item and item.strip())


def setting_name(field: str) -> str:
    """The environment variable the ``Settings`` field ``field`` is read from (its alias, written only there)."""
    return str(Settings.model_fields[field].validation_alias)


def normalise_url(raw: str, variable: str) -> URL:
    """Parse a database URL; PostgreSQL URLs always get the psycopg2 driver."""
    try:
        url = make_url(raw)
    except Exception as exc:
        raise ConfigError(
            f"{variable} is not a database URL ({exc}). Use e.g. "
            "postgresql+psycopg2://user:pass@host:5432/db or sqlite:///path/to/file.db",
            details={"variable": variable},
        ) from exc
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername=PG_DRIVER)
    elif url.get_backend_name() != "sqlite":
        raise ConfigError(
            f"{variable} names the unsupported backend {url.get_backend_name()!r}: use postgresql or sqlite.",
            details={"variable": variable},
        )
    return url


def mask_url(url: URL | str) -> str:
    """Render a URL with its password replaced by ``***``."""
    if isinstance(url, str):
        url = make_url(url)
    return url.render_as_string(hide_password=True)


def drop_api_secrets() -> None:
    """Remove ``API_SECRET_VARIABLES`` from this process's environment (a process about to run nodes)."""
    for name in API_SECRET_VARIABLES:
        os.environ.pop(name, None)


def without_api_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) without the variables of ``API_SECRET_VARIABLES``."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if name not in API_SECRET_VARIABLES}


def load_settings() -> Settings:
    """Read settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            variable = str(err["loc"][0]) if err["loc"] else "?"
            given = os.environ.get(variable)
            shown = "***" if "PASSWORD" in variable or "URL" in variable else repr(given)
            problems.append(f"{variable}={shown}: {err['msg']}")
        raise ConfigError(
            "Invalid setting: " + "; ".join(problems) + ". Fix or unset the variable.",
            details={"variables": [str(e["loc"][0]) for e in exc.errors() if e["loc"]]},
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once). Tests call ``get_settings.cache_clear()``."""
    return load_settings()
