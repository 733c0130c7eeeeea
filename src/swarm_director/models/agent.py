"""Agents and their hierarchy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from swarm_director.db.base import Base, TimestampMixin
from swarm_director.db.types import JSONType, UTCDateTime, enum_type
from swarm_director.enums import AgentStatus, AgentType


class Agent(TimestampMixin, Base):
    """An agent of the swarm: the director, a department coordinator, a specialist, ..."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    agent_type: Mapped[AgentType] = mapped_column(enum_type(AgentType, "agent_type"))
    status: Mapped[AgentStatus] = mapped_column(
        enum_type(AgentStatus, "status"), default=AgentStatus.IDLE
    )
    description: Mapped[str | None] = mapped_column(Text)
    capabilities: Mapped[list[str]] = mapped_column(JSONType, default=lambda: [])
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=lambda: {})
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    total_conversations: Mapped[int] = mapped_column(Integer, default=0)
    total_messages_sent: Mapped[int] = mapped_column(Integer, default=0)
    average_response_time: Mapped[float | None] = mapped_column(Float)
    """Mean response time in seconds, maintained by the agent runtime."""
    last_conversation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The agent's last sign of life: a claim or a lease heartbeat of the work queue."""

    parent: Mapped[Agent | None] = relationship(
        remote_side=[id], back_populates="children", lazy="raise"
    )
    children: Mapped[list[Agent]] = relationship(
        back_populates="parent", passive_deletes=True, lazy="raise"
    )

    # Listing agents by type/status (GET /api/agents?agent_type=...&status=...).
    __table_args__ = (Index("ix_agents_agent_type_status", "agent_type", "status"),)
