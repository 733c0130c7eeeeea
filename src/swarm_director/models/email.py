"""Email messages and their delivery lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from swarm_director.db.base import Base, TimestampMixin
from swarm_director.db.types import JSONType, UTCDateTime, enum_type
from swarm_director.enums import EmailStatus

if TYPE_CHECKING:
    from swarm_director.models.task import Task

#: Allowed status changes: draft→queued→sent→delivered, queued→failed, sent→failed (bounce),
#: failed→queued (retry).
EMAIL_TRANSITIONS: dict[EmailStatus, frozenset[EmailStatus]] = {
    EmailStatus.DRAFT: frozenset({EmailStatus.QUEUED}),
    EmailStatus.QUEUED: frozenset({EmailStatus.SENT, EmailStatus.FAILED}),
    EmailStatus.SENT: frozenset({EmailStatus.DELIVERED, EmailStatus.FAILED}),
    EmailStatus.FAILED: frozenset({EmailStatus.QUEUED}),
    EmailStatus.DELIVERED: frozenset(),
}


class EmailMessage(TimestampMixin, Base):
    """An email written for a task, from draft to delivery."""

    __tablename__ = "email_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[EmailStatus] = mapped_column(
        enum_type(EmailStatus, "status"), default=EmailStatus.DRAFT
    )
    sender: Mapped[str | None] = mapped_column(String(320))
    cc: Mapped[list[str]] = mapped_column(JSONType, default=lambda: [])
    bcc: Mapped[list[str]] = mapped_column(JSONType, default=lambda: [])
    draft_id: Mapped[int | None] = mapped_column(
        ForeignKey("drafts.id", ondelete="SET NULL"), index=True
    )
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_message: Mapped[str | None] = mapped_column(Text)

    task: Mapped[Task] = relationship(back_populates="emails", lazy="raise")

    # The outbox: GET /api/emails?status=queued, oldest first by id.
    __table_args__ = (
        Index("ix_email_messages_status_id", "status", "id"),
        # The emails report: the emails sent in a range, not every email ever sent.
        Index("ix_email_messages_sent_at", "sent_at"),
    )
