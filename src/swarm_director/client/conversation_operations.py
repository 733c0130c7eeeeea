"""Conversation operations: conversations, their participants and messages (see
:mod:`.operations`)."""

from __future__ import annotations

from typing import Unpack

from swarm_director.client.calls import Body, Call, query
from swarm_director.client.operations import listing, patch, post
from swarm_director.schemas import (
    ConversationOut,
    ConversationPage,
    MessageOut,
    MessagePage,
    ParticipantOut,
    ParticipantPage,
)
from swarm_director.schemas.filters import (
    ConversationFilter,
    ConversationFilterArgs,
    MessageFilter,
    MessageFilterArgs,
)


def list_conversations(
    *,
    limit: int | None = None,
    cursor: str | None = None,
    **filters: Unpack[ConversationFilterArgs],
) -> Call[ConversationPage]:
    """A page of conversations in id order (filters: the fields of
    :class:`~swarm_director.schemas.filters.ConversationFilter`)."""
    return listing(
        "/api/conversations",
        ConversationPage,
        ConversationFilter,
        filters,
        limit=limit,
        cursor=cursor,
    )


def create_conversation(body: Body) -> Call[ConversationOut]:
    """Start a conversation (active, no participants yet)."""
    return post("/api/conversations", ConversationOut, body)


def get_conversation(conversation_id: int) -> Call[ConversationOut]:
    """One conversation with its participant and message counts."""
    return Call("GET", f"/api/conversations/{conversation_id}", ConversationOut)


def update_conversation(conversation_id: int, body: Body) -> Call[ConversationOut]:
    """Change a conversation; ``completed`` stamps completed_at."""
    return patch(f"/api/conversations/{conversation_id}", ConversationOut, body)


def delete_conversation(conversation_id: int) -> Call[None]:
    """Delete a conversation with its messages and participants."""
    return Call("DELETE", f"/api/conversations/{conversation_id}", None)


def list_participants(
    conversation_id: int,
    *,
    active: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[ParticipantPage]:
    """A page of the conversation's participants in join order (``active``: current or
    former only)."""
    params = query(active=active, limit=limit, cursor=cursor)
    path = f"/api/conversations/{conversation_id}/participants"
    return Call("GET", path, ParticipantPage, params=params)


def add_participant(conversation_id: int, body: Body) -> Call[ParticipantOut]:
    """Add an agent to an active conversation (ConflictError if it already takes part)."""
    return post(f"/api/conversations/{conversation_id}/participants", ParticipantOut, body)


def remove_participant(conversation_id: int, agent_id: int) -> Call[ParticipantOut]:
    """End an agent's participation; answers with the ended membership."""
    path = f"/api/conversations/{conversation_id}/participants/{agent_id}"
    return Call("DELETE", path, ParticipantOut)


def list_messages(
    conversation_id: int,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    **filters: Unpack[MessageFilterArgs],
) -> Call[MessagePage]:
    """A page of the conversation's messages in the order they were added (filters: the
    fields of :class:`~swarm_director.schemas.filters.MessageFilter`)."""
    return listing(
        f"/api/conversations/{conversation_id}/messages",
        MessagePage,
        MessageFilter,
        filters,
        limit=limit,
        cursor=cursor,
    )


def add_message(conversation_id: int, body: Body) -> Call[MessageOut]:
    """Add a message (the sender must be an active participant)."""
    return post(f"/api/conversations/{conversation_id}/messages", MessageOut, body)


def get_message(message_id: int) -> Call[MessageOut]:
    """One message."""
    return Call("GET", f"/api/messages/{message_id}", MessageOut)


def edit_message(message_id: int, body: Body) -> Call[MessageOut]:
    """Edit a message's content or metadata (marked edited, edit counted)."""
    return patch(f"/api/messages/{message_id}", MessageOut, body)
