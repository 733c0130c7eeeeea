"""Conversations between agents: messages and participants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from swarm_director.db.base import Base, CreatedAtMixin, TimestampMixin, utcnow
from swarm_director.db.types import JSONType, UTCDateTime, enum_type
from swarm_director.enums import ConversationStatus, MessageType
from swarm_director.models.log import BigId


class Conversation(TimestampMixin, Base):
    """A conversation; ``participant_count`` and ``message_count`` are kept exact by the store."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ConversationStatus] = mapped_column(
        enum_type(ConversationStatus, "status"), default=ConversationStatus.ACTIVE
    )
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), index=True
    )
    created_by_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    participant_count: Mapped[int] = mapped_column(Integer, default=0)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    """The ``metadata`` column (the name is reserved by SQLAlchemy's declarative base)."""
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    messages: Mapped[list[Message]] = relationship(passive_deletes=True, lazy="raise")
    participants: Mapped[list[ConversationParticipant]] = relationship(
        passive_deletes=True, lazy="raise"
    )

    # Listing conversations by status (GET /api/conversations?status=...).
    __table_args__ = (Index("ix_conversations_status_id", "status", "id"),)


class Message(TimestampMixin, Base):
    """A message in a conversation, optionally a reply in a thread."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    message_type: Mapped[MessageType] = mapped_column(
        enum_type(MessageType, "message_type"), default=MessageType.TEXT
    )
    content: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    """The ``metadata`` column (the name is reserved by SQLAlchemy's declarative base)."""
    parent_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    thread_id: Mapped[str | None] = mapped_column(String(100), index=True)
    is_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    edit_count: Mapped[int] = mapped_column(Integer, default=0)

    # Messages of a conversation in order (keyset by id).
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)


class ConversationParticipant(CreatedAtMixin, Base):
    """An agent's membership in a conversation."""

    __tablename__ = "conversation_participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(50), default="participant")
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    last_read_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )

    # The unique constraint also serves "participants of a conversation".
    __table_args__ = (UniqueConstraint("conversation_id", "agent_id"),)
