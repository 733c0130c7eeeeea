"""Tasks: the unit of work routed through the hierarchy."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from swarm_director.db.base import Base, TimestampMixin
from swarm_director.db.types import JSONType, UTCDateTime, enum_type
from swarm_director.enums import TaskPriority, TaskStatus, TaskType

if TYPE_CHECKING:
    from swarm_director.models.draft import Draft
    from swarm_director.models.email import EmailMessage
    from swarm_director.models.log import AgentLog

#: Allowed status changes; ``completed`` is final.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.FAILED}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED}),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),
    TaskStatus.COMPLETED: frozenset(),
}


class Task(TimestampMixin, Base):
    """A task assigned to an agent, possibly a subtask of another."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[TaskType] = mapped_column(enum_type(TaskType, "type"))
    user_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[TaskStatus] = mapped_column(
        enum_type(TaskStatus, "status"), default=TaskStatus.PENDING
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[TaskPriority] = mapped_column(
        enum_type(TaskPriority, "priority"), default=TaskPriority.MEDIUM
    )
    assigned_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    parent_task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # tasks <-> conversations reference each other; use_alter breaks the creation cycle.
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL", use_alter=True)
    )
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The work queue (store/queue/): a claim takes a lease for ``lease_token``'s holder
    # until ``lease_expires_at``; a failure retries after ``not_before`` until
    # ``max_attempts`` claims were used.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Claims so far (a claim of an expired lease counts as a new attempt)."""
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """A pending task is not claimed before this time (a retry's backoff, or scheduled work)."""
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(JSONType)

    logs: Mapped[list[AgentLog]] = relationship(
        back_populates="task", passive_deletes=True, lazy="raise"
    )
    drafts: Mapped[list[Draft]] = relationship(
        back_populates="task", passive_deletes=True, lazy="raise"
    )
    emails: Mapped[list[EmailMessage]] = relationship(
        back_populates="task", passive_deletes=True, lazy="raise"
    )
    subtasks: Mapped[list[Task]] = relationship(passive_deletes=True, lazy="raise")

    # Each list filter pages by id (keyset), so each index ends with id.
    __table_args__ = (
        Index("ix_tasks_status_id", "status", "id"),
        Index("ix_tasks_type_id", "type", "id"),
        Index("ix_tasks_user_id_id", "user_id", "id"),
        Index("ix_tasks_assigned_agent_id_id", "assigned_agent_id", "id"),
        Index("ix_tasks_parent_task_id_id", "parent_task_id", "id"),
        Index("ix_tasks_conversation_id", "conversation_id"),
        # The queue's claim: ready tasks of one priority in id order; expired leases.
        Index("ix_tasks_status_priority_id", "status", "priority", "id"),
        Index("ix_tasks_status_lease_expires_at", "status", "lease_expires_at"),
        # Reports: tasks created in a range (the partial hours at either end of a rolled-up
        # range; every bucket of a minute or half-hour-zone report), not a scan of all tasks.
        Index("ix_tasks_created_at", "created_at"),
    )
