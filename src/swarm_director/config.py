"""Settings: the one place that reads the environment and ``.env``.

Every knob of the service, the command line and the operations toolkit is a field of
:class:`Settings`, with a default and a one-line description (its docstring). Command-line
options take their defaults from here (an option still wins); ``ops`` functions receive typed
values or policy objects built from these fields, never environment names.
``swarm-director config show`` prints every setting with its effective value and source.

``SWARM_ENV`` picks a profile (development, testing, production). ``DATABASE_URL`` picks the
database; without it the embedded default is a SQLite file named after the profile under
``SWARM_DATA_DIR`` (default ``./database/data``), e.g. ``database/data/swarm_director_dev.db``.
Production refuses to guess: it needs an explicit ``DATABASE_URL``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import BeforeValidator, Field, PlainSerializer, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from swarm_director.durations import format_duration, parse_duration
from swarm_director.errors import ConfigError
from swarm_director.redact import masked_url


class Profile(StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    PRODUCTION = "production"


_PROFILE_SUFFIX = {
    Profile.DEVELOPMENT: "dev",
    Profile.TESTING: "test",
    Profile.PRODUCTION: "prod",
}

ENV_FILE = ".env"
#: Shortest SWARM_API_TOKEN and SWARM_SECRET_KEY accepted: a short one can be guessed offline
#: (a console cookie or a captured request is all it takes to test guesses).
MIN_SECRET_CHARS = 16
#: The shape of an age X25519 recipient (the checksum is checked where it is used).
_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")

#: A duration written as ``30d``, ``12h``, ``90m``, ``2w`` or ``45s``.
Duration = Annotated[
    timedelta,
    BeforeValidator(lambda v: parse_duration(v) if isinstance(v, str) else v),
    PlainSerializer(format_duration, return_type=str),
]


class Settings(BaseSettings):
    """Every setting of the service, read from the environment and ``.env``."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        # The docstring under each field is its description (config show, the README table).
        use_attribute_docstrings=True,
    )

    # -- where the data lives --------------------------------------------------------------
    env: Profile = Field(default=Profile.DEVELOPMENT, alias="SWARM_ENV")
    """Profile: development, testing or production (production needs DATABASE_URL)."""
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    """SQLAlchemy URL, e.g. `postgresql://user:pw@host/db`; unset: the embedded SQLite file."""
    data_dir: Path = Field(default=Path("database/data"), alias="SWARM_DATA_DIR")
    """Folder of the embedded SQLite database (created on demand)."""
    sqlite_busy_timeout_s: float = Field(default=30.0, alias="SWARM_SQLITE_BUSY_TIMEOUT", gt=0)
    """Seconds a SQLite writer waits for the write lock before giving up."""
    pool_size: int = Field(default=5, alias="SWARM_POOL_SIZE", ge=1)
    """PostgreSQL connections per process."""

    # -- past one server (docs/scaling.md) -------------------------------------------------
    replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SWARM_REPLICA_URLS"
    )
    """PostgreSQL standbys (URLs, comma separated) that serve read-only requests; unset: none."""
    replica_max_lag_s: float = Field(default=5.0, alias="SWARM_REPLICA_MAX_LAG_S", gt=0)
    """A replica further behind the primary than this many seconds (or unreachable) is skipped."""
    replica_wait_s: float = Field(default=0.25, alias="SWARM_REPLICA_WAIT_S", ge=0, le=10)
    """A read naming a commit position waits this long for a replica to replay it, else the
    primary serves it."""
    replica_check_s: float = Field(default=1.0, alias="SWARM_REPLICA_CHECK_S", gt=0, le=60)
    """How often each server process measures every replica's lag."""
    pg_transaction_pooler: bool = Field(default=False, alias="SWARM_PG_TRANSACTION_POOLER")
    """The PostgreSQL URLs go through a pooler in transaction mode (PgBouncer): no prepared
    statements, and the work queue's waiters poll instead of LISTEN."""

    # -- the API ---------------------------------------------------------------------------
    api_token: SecretStr | None = Field(default=None, alias="SWARM_API_TOKEN")
    """When set, every API endpoint but `/api/health` needs `Authorization: Bearer <token>`."""
    max_request_bytes: int = Field(default=16 * 1024 * 1024, alias="SWARM_MAX_REQUEST_BYTES", ge=1)
    """Request bodies larger than this get 413 before they are parsed."""
    max_request_values: int = Field(default=500_000, alias="SWARM_MAX_REQUEST_VALUES", ge=1)
    """Request bodies holding more JSON values than this get 413 before they are parsed."""
    max_json_bytes: int = Field(default=64 * 1024, alias="SWARM_MAX_JSON_BYTES", ge=2)
    """Largest free-form JSON value (a row's metadata, an agent's config), as compact JSON."""
    max_json_items: int = Field(default=10_000, alias="SWARM_MAX_JSON_ITEMS", ge=1)
    """Most JSON values one free-form JSON value (metadata, config) may hold."""
    timings: bool = Field(default=True, alias="SWARM_TIMINGS")
    """Record the slowest statement shapes of the service in the database (listed by db stats)."""
    timings_flush: Duration = Field(
        default=timedelta(seconds=30), alias="SWARM_TIMINGS_FLUSH", gt=timedelta(0)
    )
    """How often each server process merges its statement timings into the database."""
    timings_keep: int = Field(default=100, alias="SWARM_TIMINGS_KEEP", ge=1, le=10_000)
    """The statement_timings table keeps this many shapes, the slowest (worst single run)."""
    rollup_fold: Duration = Field(
        default=timedelta(minutes=5), alias="SWARM_ROLLUP_FOLD", ge=timedelta(0)
    )
    """How often a server process folds the report rollups' deltas (PostgreSQL) and digests
    the attempts of the hours that have ended (0s: never)."""
    stream_poll_s: float = Field(default=0.5, alias="SWARM_STREAM_POLL_S", gt=0, le=60)
    """How often a live log stream looks for new rows (each look is one or two queries)."""
    stream_heartbeat_s: float = Field(default=15.0, alias="SWARM_STREAM_HEARTBEAT_S", gt=0)
    """Seconds of silence after which a live log stream sends a heartbeat comment."""
    stream_max_s: float = Field(default=3600.0, alias="SWARM_STREAM_MAX_S", gt=0)
    """A live log stream ends after this long; clients reconnect with their last event id."""
    stream_max_clients: int = Field(default=24, alias="SWARM_STREAM_MAX_CLIENTS", ge=1)
    """Open live log streams per server process; one more gets 503 with Retry-After."""
    stream_max_per_key: int = Field(default=4, alias="SWARM_STREAM_MAX_PER_KEY", ge=1)
    """Open live log streams per API key (console: per address) and process; one more gets 429."""
    stream_key_check_s: float = Field(default=5.0, alias="SWARM_STREAM_KEY_CHECK_S", gt=0, le=300)
    """How often an idle live log stream re-checks its API key (revoked or expired: it ends)."""
    export_max_clients: int = Field(default=2, alias="SWARM_EXPORT_MAX_CLIENTS", ge=1)
    """Exports streamed at once per server process (each holds a thread and a database
    connection until it ends); one more gets 503 with Retry-After."""
    export_max_per_key: int = Field(default=1, alias="SWARM_EXPORT_MAX_PER_KEY", ge=1)
    """Exports streamed at once per API key (console: per address) and process; one more: 429."""
    secret_key: SecretStr | None = Field(default=None, alias="SWARM_SECRET_KEY")
    """Signs console cookies; unset: a random key kept in SWARM_DATA_DIR (set it on each server)."""
    auth_fail_limit: int = Field(default=10, alias="SWARM_AUTH_FAIL_LIMIT", ge=1)
    """Failed logins or bearer tokens per client address (or key id) before 429 answers."""
    auth_fail_window: Duration = Field(
        default=timedelta(minutes=1), alias="SWARM_AUTH_FAIL_WINDOW", gt=timedelta(0)
    )
    """How long a failed login or bearer token counts against its address and key id."""
    secure_cookies: bool = Field(default=False, alias="SWARM_SECURE_COOKIES")
    """Mark console cookies `Secure` (set it when the service is behind HTTPS)."""

    # -- work queue ------------------------------------------------------------------------
    queue_backoff_base_s: float = Field(default=5.0, alias="SWARM_QUEUE_BACKOFF_BASE_S", gt=0)
    """A failed task's first retry waits about this long (half to all of it), doubling per try."""
    queue_backoff_cap_s: float = Field(default=3600.0, alias="SWARM_QUEUE_BACKOFF_CAP_S", gt=0)
    """The longest wait before a retry of a failed task."""
    claim_max_wait_s: float = Field(default=60.0, alias="SWARM_CLAIM_MAX_WAIT_S", ge=0, le=60)
    """A claim's wait_s is cut to this (keep it below your proxy's read timeout)."""
    agent_silent_after: Duration = Field(
        default=timedelta(minutes=10), alias="SWARM_AGENT_SILENT_AFTER", gt=timedelta(0)
    )
    """The console lists an agent as silent when its last claim or heartbeat is older."""

    # -- backups ---------------------------------------------------------------------------
    backup_dir: Path | None = Field(default=None, alias="SWARM_BACKUP_DIR")
    """Backup folder; unset: backups/ beside the embedded database's folder, else ./backups."""
    keep_last: int | None = Field(default=7, alias="SWARM_KEEP_LAST", ge=1)
    """db maintain keeps the newest N backups (with SWARM_KEEP_DAYS, a backup either keeps)."""
    keep_days: float | None = Field(default=None, alias="SWARM_KEEP_DAYS", gt=0)
    """db maintain also keeps backups younger than N days; unset: only SWARM_KEEP_LAST counts."""
    backup_key: SecretStr | None = Field(default=None, alias="SWARM_BACKUP_KEY")
    """Key that encrypts backups (make one with db backup-key); unset: backups are plaintext."""
    backup_recipients: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SWARM_BACKUP_RECIPIENTS"
    )
    """age recipients (age1..., comma separated) that backups and log archives are encrypted to."""
    backup_identity: Path | None = Field(default=None, alias="SWARM_BACKUP_IDENTITY")
    """age identity file that opens backups for verify and restore (db backup does not need it)."""
    pg_bin: Path | None = Field(default=None, alias="SWARM_PG_BIN")
    """Folder of pg_dump/pg_restore; unset: found on PATH."""

    # -- retention -------------------------------------------------------------------------
    log_retention: Duration = Field(default=timedelta(days=30), alias="SWARM_LOG_RETENTION")
    """db maintain and db cleanup-logs delete agent logs older than this (unless a level keeps
    them longer)."""
    log_keep: str = Field(default="error=90d", alias="SWARM_LOG_KEEP")
    """Per-level retention of db maintain and db cleanup-logs, LEVEL=DURATION,... (e.g.
    error=90d,warning=60d)."""
    log_archive_dir: Path | None = Field(default=None, alias="SWARM_LOG_ARCHIVE_DIR")
    """db maintain archives deleted logs here (one .jsonl.gz per run); unset: no archive."""
    idempotency_ttl: Duration = Field(default=timedelta(days=7), alias="SWARM_IDEMPOTENCY_TTL")
    """db maintain deletes idempotency keys older than this (a later retry is stored again)."""
    history_retention: Duration = Field(default=timedelta(days=90), alias="SWARM_HISTORY_RETENTION")
    """db maintain deletes history rows older than this (archived with the logs when set)."""
    partitions_ahead: int = Field(default=3, alias="SWARM_PARTITIONS_AHEAD", ge=0, le=120)
    """PostgreSQL: db maintain keeps this many monthly log partitions ready beyond this month."""

    @field_validator("backup_recipients", mode="before")
    @classmethod
    def _split_recipients(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in (p.strip() for p in value.split(",")) if part]
        if isinstance(value, list | tuple):
            for item in value:
                if not _RECIPIENT.fullmatch(str(item).strip()):
                    raise ValueError(f"{str(item)[:80]!r} is not an age recipient (age1...)")
            return [str(item).strip() for item in value]
        return value

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _split_replicas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in re.split(r"[\s,]+", value) if part]
        if isinstance(value, list | tuple):
            for item in value:
                try:
                    url = make_url(str(item))
                except Exception:
                    raise ValueError("a replica URL cannot be read (not shown)") from None
                if url.get_backend_name() != "postgresql":
                    raise ValueError(f"{masked_url(url)} is not a PostgreSQL URL")
            return [str(item) for item in value]
        return value

    @field_validator("api_token", "secret_key", mode="before")
    @classmethod
    def _long_enough(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        if not raw.strip():
            return None  # `SWARM_API_TOKEN=` means "no token", as it always did
        if len(raw) < MIN_SECRET_CHARS:
            # The message never repeats the value.
            raise ValueError(
                f"must be at least {MIN_SECRET_CHARS} characters (make one with "
                "`openssl rand -hex 32`)"
            )
        return value

    @field_validator("backup_identity", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `SWARM_BACKUP_IDENTITY=` means "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def is_embedded_default(self) -> bool:
        """True when no DATABASE_URL was given and the embedded SQLite file is used."""
        return not self.database_url

    def resolved_url(self) -> URL:
        """The database URL to use, after applying the profile's rules."""
        if self.database_url:
            try:
                return make_url(self.database_url)
            except Exception as exc:  # SQLAlchemy raises ArgumentError with the raw URL
                raise ConfigError(f"invalid database URL: {exc.__class__.__name__}") from None
        if self.env is Profile.PRODUCTION:
            raise ConfigError("SWARM_ENV=production needs an explicit DATABASE_URL")
        path = self.data_dir / f"swarm_director_{_PROFILE_SUFFIX[self.env]}.db"
        return URL.create("sqlite", database=str(path))

    def resolved_backup_dir(self) -> Path:
        """``SWARM_BACKUP_DIR``; else ``backups/`` beside the embedded database's folder, or
        ``./backups`` for a database given by URL."""
        if self.backup_dir is not None:
            return self.backup_dir
        if self.is_embedded_default:
            return self.data_dir.parent / "backups"
        return Path("backups")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. from CLI options), keyed
    by environment name (``DATABASE_URL=...``) or field name. ``None`` overrides are ignored.

    Raises :class:`ConfigError` naming the setting when a value is invalid.
    """
    return make_settings({k: v for k, v in overrides.items() if v is not None})


def make_settings(values: Mapping[str, object]) -> Settings:
    """Settings from the environment with ``values`` on top (``None`` unsets a setting).

    Raises :class:`ConfigError` naming the setting when a value is invalid.
    """
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except PydanticValidationError as error:
        raise ConfigError(_invalid_setting(error)) from None


def _invalid_setting(error: PydanticValidationError) -> str:
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "a setting"
    field = Settings.model_fields.get(name)
    env_name = field.alias if field is not None and field.alias else name
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"invalid setting {env_name}: {message}"


# -- where each value came from ------------------------------------------------------------

SECRET_FIELDS = frozenset({"api_token", "backup_key", "secret_key"})
URL_FIELDS = frozenset({"database_url", "replica_urls"})


@dataclass(frozen=True)
class SettingInfo:
    """One row of ``config show``: a setting, its shown value, source and description."""

    env_name: str
    field: str
    value: Any
    source: str
    description: str
    default: Any


def describe(
    settings: Settings, overrides: Mapping[str, object] | None = None
) -> list[SettingInfo]:
    """Every setting with its effective value (secrets masked) and where it came from:
    ``option`` (an override), ``environment``, ``.env`` or ``default``."""
    given = {k for k, v in (overrides or {}).items() if v is not None}
    dotenv = _dotenv_names()
    dumped = settings.model_dump(mode="json")
    rows = []
    for name, field in Settings.model_fields.items():
        env_name = field.alias or name
        if env_name in given or name in given:
            source = "option"
        elif env_name in os.environ:
            source = "environment"
        elif env_name in dotenv:
            source = ".env"
        else:
            source = "default"
        rows.append(
            SettingInfo(
                env_name=env_name,
                field=name,
                value=_shown(name, getattr(settings, name), dumped[name]),
                source=source,
                description=_description(name),
                default=default_text(name),
            )
        )
    return rows


def _dotenv_names() -> set[str]:
    path = Path(ENV_FILE)
    return set(dotenv_values(path)) if path.is_file() else set()


def _shown(name: str, raw: Any, dumped: Any) -> Any:
    if raw is None:
        return None
    if name in SECRET_FIELDS:
        return "***"
    if name in URL_FIELDS:
        return [masked_url(u) for u in raw] if isinstance(raw, list) else masked_url(str(raw))
    return dumped


def _description(name: str) -> str:
    return " ".join((Settings.model_fields[name].description or "").split())


def default_text(name: str) -> str:
    """The default of the setting whose field is ``name``, as ``config table`` shows it."""
    field = Settings.model_fields[name]
    default = field.default
    if default is None or field.default_factory is not None:
        return "unset"
    if isinstance(default, timedelta):
        return format_duration(default)
    if isinstance(default, StrEnum):
        return default.value
    if name.endswith("_bytes") and isinstance(default, int):
        for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
            if default >= factor and default % factor == 0:
                return f"{default // factor} {unit}"
        return str(default)
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)
