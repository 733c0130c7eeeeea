"""Settings from the environment (and a ``.env`` file), in one place.

``SWARM_ENV`` picks a profile (development, testing, production). ``DATABASE_URL`` picks the
database; without it the embedded default is a SQLite file named after the profile under
``SWARM_DATA_DIR`` (default ``./database/data``), e.g. ``database/data/swarm_director_dev.db``.
Production refuses to guess: it needs an explicit ``DATABASE_URL``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from swarm_director.errors import ConfigError


class Profile(StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    PRODUCTION = "production"


_PROFILE_SUFFIX = {
    Profile.DEVELOPMENT: "dev",
    Profile.TESTING: "test",
    Profile.PRODUCTION: "prod",
}


class Settings(BaseSettings):
    """Every knob the service reads from the environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    env: Profile = Field(default=Profile.DEVELOPMENT, alias="SWARM_ENV")
    """Profile: development, testing or production."""
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    """SQLAlchemy URL; None means the embedded SQLite file."""
    data_dir: Path = Field(default=Path("database/data"), alias="SWARM_DATA_DIR")
    """Folder of the embedded SQLite database (created on demand)."""
    sqlite_busy_timeout_s: float = Field(default=30.0, alias="SWARM_SQLITE_BUSY_TIMEOUT", gt=0)
    """How long a SQLite writer waits for the write lock before giving up."""
    pool_size: int = Field(default=5, alias="SWARM_POOL_SIZE", ge=1)
    """PostgreSQL connection pool size per process."""
    api_token: SecretStr | None = Field(default=None, alias="SWARM_API_TOKEN")
    """When set, every API endpoint but health requires ``Authorization: Bearer <token>``."""
    max_request_bytes: int = Field(default=16 * 1024 * 1024, alias="SWARM_MAX_REQUEST_BYTES")
    """Request bodies above this size get 413 before they are parsed."""
    stream_poll_s: float = Field(default=0.5, alias="SWARM_STREAM_POLL_S", gt=0, le=60)
    """How often a live log stream looks for new rows (each look is one or two queries)."""
    stream_heartbeat_s: float = Field(default=15.0, alias="SWARM_STREAM_HEARTBEAT_S", gt=0)
    """Seconds of silence after which a live log stream sends a heartbeat comment."""
    stream_max_s: float = Field(default=3600.0, alias="SWARM_STREAM_MAX_S", gt=0)
    """A live log stream ends after this long; clients reconnect with their last event id."""
    stream_max_clients: int = Field(default=24, alias="SWARM_STREAM_MAX_CLIENTS", ge=1)
    """Open live log streams per server process; one more gets 503 with Retry-After."""

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


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. from CLI options)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]
