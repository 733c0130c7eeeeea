"""Drafts: numbered, immutable versions of a task's document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from swarm_director.db.base import Base, TimestampMixin
from swarm_director.db.types import enum_type
from swarm_director.enums import DraftStatus

if TYPE_CHECKING:
    from swarm_director.models.task import Task


class Draft(TimestampMixin, Base):
    """Version ``version`` of a task's draft; its content never changes once written."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[DraftStatus] = mapped_column(
        enum_type(DraftStatus, "status"), default=DraftStatus.DRAFT
    )
    author_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    reviewer_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    review_notes: Mapped[str | None] = mapped_column(Text)

    task: Mapped[Task] = relationship(back_populates="drafts", lazy="raise")

    # Also the index for "drafts of a task in version order" and "version N of a task".
    __table_args__ = (
        UniqueConstraint("task_id", "version"),
        # The drafts report: the drafts approved in a range and their versions, from the
        # index alone, not every draft ever written.
        Index("ix_drafts_status_updated_at", "status", "updated_at", "version"),
    )
