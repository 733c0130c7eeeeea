"""Console sessions: kept on the server so that logging out ends every copy of the cookie."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base, CreatedAtMixin
from swarm_director.db.types import UTCDateTime


class ConsoleSession(CreatedAtMixin, Base):
    """One console login. The cookie carries a random session id; only its SHA-256 is stored,
    so reading this table does not give anyone a cookie that works."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the session id in the cookie."""
    key_id: Mapped[str | None] = mapped_column(String(32))
    """The API key that opened the session (its public id); None: the bootstrap token."""
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the session was logged out; None while it lasts (until ``expires_at``)."""

    # The unique constraint is the lookup index (by the cookie's id); expires_at serves
    # pruning old sessions (db maintain).
    __table_args__ = (
        UniqueConstraint("session_hash"),
        Index("ix_console_sessions_expires_at", "expires_at"),
    )
