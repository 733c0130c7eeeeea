"""API keys: named bearer secrets with a scope, stored only as a hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base, TimestampMixin
from swarm_director.db.types import UTCDateTime, enum_type
from swarm_director.enums import ApiScope


class ApiKey(TimestampMixin, Base):
    """One API key. The secret itself is never stored: only ``key_id`` (the non-secret part
    of the token, used to find the row) and the SHA-256 of the secret part."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    """Chosen by the operator; how `keys revoke` names the key."""
    key_id: Mapped[str] = mapped_column(String(32))
    """Public part of the token (``sdk_<key_id>_<secret>``): one indexed lookup per request."""
    secret_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the secret part."""
    scope: Mapped[ApiScope] = mapped_column(enum_type(ApiScope, "scope"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """Last authenticated request, to the minute (written at most once a minute per key)."""
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Both unique constraints are also the indexes of their lookups (by name, by key id).
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("key_id"))
