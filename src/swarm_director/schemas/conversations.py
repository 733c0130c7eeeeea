"""Request and response bodies for conversations, their messages and participants."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, StringConstraints

from swarm_director.enums import ConversationStatus, MessageType
from swarm_director.schemas.common import (
    METADATA_OUT,
    InputModel,
    JSONObject,
    LongText,
    Name,
    NoNul,
    OutputModel,
    PageOut,
    Patch,
    PositiveBigId,
    PositiveId,
    ShortText,
    StoredJSON,
    Title,
)

Role = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul]


class ConversationCreate(InputModel):
    """A new, active conversation."""

    title: Title
    description: ShortText | None = None
    task_id: PositiveId | None = None
    created_by_agent_id: PositiveId | None = None
    metadata: JSONObject | None = None


class ConversationUpdate(InputModel):
    """Fields of a conversation that may change; ``completed`` stamps ``completed_at``."""

    title: Patch[Title] = None
    description: ShortText | None = None
    status: Patch[ConversationStatus] = None
    task_id: PositiveId | None = None
    metadata: JSONObject | None = None


class ConversationOut(OutputModel):
    """A conversation with its exact participant and message counts."""

    id: int
    title: str
    description: str | None
    status: ConversationStatus
    task_id: int | None
    created_by_agent_id: int | None
    participant_count: int
    message_count: int
    metadata: StoredJSON | None = METADATA_OUT
    completed_at: AwareDatetime | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ParticipantCreate(InputModel):
    """An agent joining a conversation."""

    agent_id: PositiveId
    role: Role = "participant"


class ParticipantOut(OutputModel):
    """An agent's membership in a conversation."""

    id: int
    conversation_id: int
    agent_id: int
    role: str
    joined_at: AwareDatetime
    left_at: AwareDatetime | None
    is_active: bool
    message_count: int
    last_read_message_id: int | None
    created_at: AwareDatetime


class MessageCreate(InputModel):
    """A new message; a sender must be an active participant."""

    content: LongText
    sender_agent_id: PositiveId | None = None
    message_type: MessageType = MessageType.TEXT
    metadata: JSONObject | None = None
    parent_message_id: PositiveBigId | None = None
    thread_id: Name | None = None


class MessageUpdate(InputModel):
    """An edit of a message (marks it edited and counts the edit)."""

    content: Patch[LongText] = None
    metadata: JSONObject | None = None


class MessageOut(OutputModel):
    """A stored message."""

    id: int
    conversation_id: int
    sender_agent_id: int | None
    message_type: MessageType
    content: str
    metadata: StoredJSON | None = METADATA_OUT
    parent_message_id: int | None
    thread_id: str | None
    is_edited: bool
    edit_count: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ConversationPage(PageOut[ConversationOut]):
    """A page of conversations."""


class MessagePage(PageOut[MessageOut]):
    """A page of messages in id order."""


class ParticipantPage(PageOut[ParticipantOut]):
    """A page of participants in join order."""
