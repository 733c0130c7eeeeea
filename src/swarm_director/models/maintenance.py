"""The audit trail of administrative actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base, TimestampMixin, utcnow
from swarm_director.db.types import JSONType, UTCDateTime, enum_type
from swarm_director.enums import MaintenanceOperation, MaintenanceStatus


class MaintenanceEvent(TimestampMixin, Base):
    """One administrative action (migrate, backup, cleanup, ...) and how it ended."""

    __tablename__ = "maintenance_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation: Mapped[MaintenanceOperation] = mapped_column(
        enum_type(MaintenanceOperation, "operation")
    )
    status: Mapped[MaintenanceStatus] = mapped_column(enum_type(MaintenanceStatus, "status"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=lambda: {})

    # "Last successful backup/optimize/cleanup" in db stats.
    __table_args__ = (
        Index(
            "ix_maintenance_events_operation_status_started_at", "operation", "status", "started_at"
        ),
    )
