"""Conversations between agents, with their participants and messages."""

from __future__ import annotations

from flask import Response
from pydantic import BaseModel, Field

from swarm_director.api.common import (
    PageQuery,
    blueprint,
    created_response,
    json_response,
    listed,
    no_content,
)
from swarm_director.schemas import (
    ConversationCreate,
    ConversationOut,
    ConversationPage,
    ConversationUpdate,
    MessageCreate,
    MessageOut,
    MessagePage,
    MessageUpdate,
    ParticipantCreate,
    ParticipantOut,
    ParticipantPage,
)
from swarm_director.schemas.common import PositiveBigId, PositiveId
from swarm_director.schemas.filters import ConversationFilter, MessageFilter
from swarm_director.store import conversations
from swarm_director.web.context import session
from swarm_director.web.errors import ErrorResponse

bp = blueprint("conversations", "Conversations between agents: participants and messages.")


class ConversationPath(BaseModel):
    conversation_id: PositiveId


class ParticipantPath(BaseModel):
    conversation_id: PositiveId
    agent_id: PositiveId


class MessagePath(BaseModel):
    message_id: PositiveBigId


class ConversationQuery(ConversationFilter, PageQuery):
    """The query of conversation lists: the filters and a page."""


class ParticipantQuery(PageQuery):
    active: bool | None = Field(default=None, description="Current (true) or former (false).")


class MessageQuery(MessageFilter, PageQuery):
    """The query of a conversation's messages: the filters and a page."""


@bp.get("/conversations", responses={200: ConversationPage})
def list_conversations(query: ConversationQuery) -> Response:
    """List conversations in id order, by status and/or task."""
    return listed(ConversationPage, conversations.list_conversations, query, query=query)


@bp.post("/conversations", responses={201: ConversationOut})
def create_conversation(body: ConversationCreate) -> Response:
    """Start a conversation (active, no participants yet)."""
    conversation = conversations.create_conversation(session(), body)
    return created_response(
        ConversationOut.model_validate(conversation), f"/api/conversations/{conversation.id}"
    )


@bp.get("/conversations/<int:conversation_id>", responses={200: ConversationOut})
def get_conversation(path: ConversationPath) -> Response:
    """Get one conversation with its participant and message counts."""
    conversation = conversations.get_conversation(session(), path.conversation_id)
    return json_response(ConversationOut.model_validate(conversation))


@bp.patch("/conversations/<int:conversation_id>", responses={200: ConversationOut})
def update_conversation(path: ConversationPath, body: ConversationUpdate) -> Response:
    """Change a conversation; `completed` stamps completed_at."""
    conversation = conversations.update_conversation(session(), path.conversation_id, body)
    return json_response(ConversationOut.model_validate(conversation))


@bp.delete("/conversations/<int:conversation_id>", responses={204: None})
def delete_conversation(path: ConversationPath) -> Response:
    """Delete a conversation with its messages and participants."""
    conversations.delete_conversation(session(), path.conversation_id)
    return no_content()


@bp.get("/conversations/<int:conversation_id>/participants", responses={200: ParticipantPage})
def list_participants(path: ConversationPath, query: ParticipantQuery) -> Response:
    """List the conversation's participants in join order."""
    return listed(
        ParticipantPage,
        conversations.list_participants,
        path.conversation_id,
        active=query.active,
        query=query,
    )


@bp.post(
    "/conversations/<int:conversation_id>/participants",
    responses={201: ParticipantOut, 409: ErrorResponse},
)
def add_participant(path: ConversationPath, body: ParticipantCreate) -> Response:
    """Add an agent to an active conversation; 409 if it already takes part."""
    participant = conversations.add_participant(
        session(), path.conversation_id, body.agent_id, body.role
    )
    return created_response(
        ParticipantOut.model_validate(participant),
        f"/api/conversations/{path.conversation_id}/participants",
    )


@bp.delete(
    "/conversations/<int:conversation_id>/participants/<int:agent_id>",
    responses={200: ParticipantOut},
)
def remove_participant(path: ParticipantPath) -> Response:
    """End an agent's participation; answers with the ended membership."""
    participant = conversations.remove_participant(session(), path.conversation_id, path.agent_id)
    return json_response(ParticipantOut.model_validate(participant))


@bp.get("/conversations/<int:conversation_id>/messages", responses={200: MessagePage})
def list_messages(path: ConversationPath, query: MessageQuery) -> Response:
    """List the conversation's messages in the order they were added (optionally one thread,
    or those whose content matches the search `q`)."""
    return listed(
        MessagePage, conversations.list_messages, path.conversation_id, query, query=query
    )


@bp.post(
    "/conversations/<int:conversation_id>/messages",
    responses={201: MessageOut, 409: ErrorResponse},
)
def add_message(path: ConversationPath, body: MessageCreate) -> Response:
    """Add a message to an active conversation (the sender must be an active participant)."""
    message = conversations.add_message(session(), path.conversation_id, body)
    return created_response(MessageOut.model_validate(message), f"/api/messages/{message.id}")


@bp.get("/messages/<int:message_id>", responses={200: MessageOut})
def get_message(path: MessagePath) -> Response:
    """Get one message."""
    return json_response(
        MessageOut.model_validate(conversations.get_message(session(), path.message_id))
    )


@bp.patch("/messages/<int:message_id>", responses={200: MessageOut})
def edit_message(path: MessagePath, body: MessageUpdate) -> Response:
    """Edit a message's content or metadata; it is marked edited and the edit counted."""
    message = conversations.edit_message(session(), path.message_id, body)
    return json_response(MessageOut.model_validate(message))
