"""Agent logs: append-only records of what agents did."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from swarm_director.db.base import Base, CreatedAtMixin, utcnow
from swarm_director.db.partitions import PARTITION_BY
from swarm_director.db.types import JSONType, UTCDateTime, enum_type
from swarm_director.enums import LogLevel
from swarm_director.models.log_pattern import PATTERN_LENGTH, pattern_of

if TYPE_CHECKING:
    from swarm_director.models.task import Task

#: 64-bit ids on PostgreSQL; SQLite needs INTEGER PRIMARY KEY for its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _error_pattern(context: Any) -> str | None:
    """The pattern of a log inserted through SQLAlchemy without one (ORM, Core)."""
    values = context.get_current_parameters()
    level = values.get("log_level") or LogLevel.INFO
    return pattern_of(getattr(level, "value", level), values.get("message"))


class AgentLog(CreatedAtMixin, Base):
    """One log record. Rows are never updated, so there is no ``updated_at``."""

    __tablename__ = "agent_logs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    agent_type: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    log_level: Mapped[LogLevel] = mapped_column(
        enum_type(LogLevel, "log_level"), default=LogLevel.INFO
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    session_id: Mapped[str | None] = mapped_column(String(100))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    """The ``metadata`` column (the name is reserved by SQLAlchemy's declarative base)."""
    error_pattern: Mapped[str | None] = mapped_column(
        String(PATTERN_LENGTH), default=_error_pattern
    )
    """An error-level log's message with numbers and ids masked (the failures report groups
    by it; see :mod:`swarm_director.models.error_group`); None at other levels."""

    task: Mapped[Task] = relationship(back_populates="logs", lazy="raise")

    # Queries served: newest logs of a task; logs by agent, level or session over time;
    # retention deletes by age. Each ends with id so keyset pages are index scans.
    # On PostgreSQL the table is partitioned by month of timestamp (migration 008), so
    # retention drops whole months; there the primary key is (id, timestamp).
    __table_args__ = (
        Index("ix_agent_logs_task_id_timestamp_id", "task_id", "timestamp", "id"),
        Index("ix_agent_logs_agent_id_timestamp", "agent_id", "timestamp"),
        Index("ix_agent_logs_session_id_timestamp", "session_id", "timestamp"),
        Index("ix_agent_logs_log_level_timestamp", "log_level", "timestamp"),
        Index("ix_agent_logs_timestamp_id", "timestamp", "id"),
        # The most frequent errors' examples: the newest logs of one pattern.
        Index(
            "ix_agent_logs_error_pattern_timestamp",
            "error_pattern",
            "timestamp",
            postgresql_where=text("error_pattern IS NOT NULL"),
            sqlite_where=text("error_pattern IS NOT NULL"),
        ),
        {"info": {PARTITION_BY: "timestamp"}},
    )
