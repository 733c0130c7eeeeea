"""Conversations between agents: participants, messages and their exact counters.

Counters change with atomic SQL (``SET n = n + 1``) in the caller's transaction, next to the
change they count, so concurrent writers never lose an increment:

* ``conversations.participant_count`` — active participants;
* ``conversations.message_count`` and ``conversation_participants.message_count`` — messages;
* ``agents.total_conversations`` — conversations the agent ever joined (a re-join after
  leaving does not count again);
* ``agents.total_messages_sent`` and ``agents.last_conversation_at`` — messages it sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import (
    Agent,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    Message,
    Task,
)
from swarm_director.models.fulltext import MESSAGES
from swarm_director.schemas.conversations import (
    ConversationCreate,
    ConversationUpdate,
    MessageCreate,
    MessageUpdate,
    ParticipantCreate,
)
from swarm_director.schemas.filters import ConversationFilter, MessageFilter
from swarm_director.store import history
from swarm_director.store._common import (
    core_connection,
    fits,
    flush_or_conflict,
    get_or_404,
    lock_or_404,
    require_ref,
    validated,
    where_equal,
)
from swarm_director.store.filtering import SEARCHED, FilterRules
from swarm_director.store.pagination import DEFAULT_LIMIT, Ordering, Page, paginate
from swarm_director.store.search_pages import search_page

_CONVERSATIONS = Ordering("conversations", (Conversation.id,))
_MESSAGES = Ordering("messages", (Message.id,))
_PARTICIPANTS = Ordering("participants", (ConversationParticipant.id,))
Participant = ConversationParticipant


def create_conversation(
    session: Session, data: ConversationCreate | Mapping[str, Any]
) -> Conversation:
    """Creates an active conversation with no participants and returns it.

    Raises ValidationError (bad field, missing task or creator).
    """
    body = validated(ConversationCreate, data, "conversation")
    if body.task_id is not None:
        require_ref(session, Task, body.task_id, "task_id", "task")
    if body.created_by_agent_id is not None:
        require_ref(session, Agent, body.created_by_agent_id, "created_by_agent_id", "agent")
    conversation = Conversation(**body.model_dump(exclude={"metadata"}))
    if body.metadata is not None:  # an absent document is SQL NULL, not JSON null
        conversation.meta = body.metadata
    session.add(conversation)
    session.flush()
    return conversation


def get_conversation(session: Session, conversation_id: int) -> Conversation:
    """The conversation with this id; NotFoundError if there is none."""
    return get_or_404(session, Conversation, conversation_id, "conversation")


def list_conversations(
    session: Session,
    conversation_filter: ConversationFilter | Mapping[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Conversation]:
    """A page of conversations in id order, by status and/or task (``conversation_filter``:
    a :class:`~swarm_director.schemas.filters.ConversationFilter` or a mapping of its
    fields). Raises ValidationError for a bad filter, limit or cursor."""
    wanted = CONVERSATION_FILTERS.parse(conversation_filter)
    stmt = CONVERSATION_FILTERS.apply(select(Conversation), wanted)
    return paginate(session, stmt, _CONVERSATIONS, limit=limit, cursor=cursor)


#: The conditions of :class:`ConversationFilter`.
CONVERSATION_FILTERS = FilterRules(
    ConversationFilter, status=Conversation.status, task_id=Conversation.task_id
)


def update_conversation(
    session: Session, conversation_id: int, data: ConversationUpdate | Mapping[str, Any]
) -> Conversation:
    """Applies the fields present in ``data`` and returns the conversation. Becoming
    ``completed`` stamps ``completed_at``; becoming ``active`` again clears it.

    Raises NotFoundError, ValidationError (bad field, missing task).
    """
    changes = validated(ConversationUpdate, data, "conversation update").model_dump(
        exclude_unset=True
    )
    conversation = get_conversation(session, conversation_id)
    if changes.get("task_id") is not None:
        require_ref(session, Task, changes["task_id"], "task_id", "task")
    if "metadata" in changes:
        metadata = changes.pop("metadata")
        conversation.meta = sa.null() if metadata is None else metadata
    status = changes.get("status")
    if status is not None and status != conversation.status:
        if status is ConversationStatus.COMPLETED:
            conversation.completed_at = utcnow()
        elif status is ConversationStatus.ACTIVE:
            conversation.completed_at = None
    for field, value in changes.items():
        setattr(conversation, field, value)
    session.flush()
    return conversation


def delete_conversation(session: Session, conversation_id: int) -> None:
    """Deletes the conversation with its messages and participants; tasks that pointed to it
    are unlinked. Agents' lifetime statistics are kept. Raises NotFoundError."""
    session.delete(get_conversation(session, conversation_id))
    session.flush()
    session.expire_all()


def _lock_conversation(session: Session, conversation_id: int) -> Conversation:
    # Every change of a conversation's counters locks its row first, so concurrent writers
    # take the conversation, agent and membership rows in one order and never deadlock
    # (PostgreSQL; SQLite writers are serialized already).
    return lock_or_404(session, Conversation, conversation_id, "conversation")


def _open_conversation(session: Session, conversation_id: int) -> Conversation:
    conversation = _lock_conversation(session, conversation_id)
    if conversation.status is not ConversationStatus.ACTIVE:
        raise ConflictError(
            f"conversation {conversation_id} is {conversation.status.value}",
            details={"status": conversation.status.value},
        )
    return conversation


def _bump(session: Session, model: Any, where: Any, **values: Any) -> int:
    """An atomic ``UPDATE model SET ... WHERE ...``; returns the number of rows changed."""
    result = session.execute(update(model).where(where).values(**values))
    return int(result.rowcount)  # type: ignore[attr-defined]


def add_participant(
    session: Session, conversation_id: int, agent_id: int, role: str = "participant"
) -> Participant:
    """Makes the agent an active participant and returns its membership. An agent that left
    joins again on its old row. Counters follow (see the module doc).

    Raises NotFoundError (conversation), ValidationError (bad role, missing agent),
    ConflictError (already an active participant, or the conversation is not active).
    """
    body = validated(ParticipantCreate, {"agent_id": agent_id, "role": role}, "participant")
    _open_conversation(session, conversation_id)
    require_ref(session, Agent, body.agent_id, "agent_id", "agent")
    already = ConflictError(
        f"agent {agent_id} already takes part in conversation {conversation_id}",
        details={"fields": {"agent_id": "already an active participant"}},
    )
    now = utcnow()
    membership = (Participant.conversation_id == conversation_id) & (
        Participant.agent_id == agent_id
    )
    gone = session.execute(
        select(Participant.id, Participant.left_at, Participant.role).where(
            membership & ~Participant.is_active
        )
    ).first()
    rejoined = _bump(
        session,
        Participant,
        membership & ~Participant.is_active,
        is_active=True,
        left_at=None,
        joined_at=now,
        role=body.role,
    )
    if (
        rejoined and gone is not None
    ):  # a Core update: recorded here (ORM changes record themselves)
        history.record(
            session,
            "participant",
            gone.id,
            "update",
            {
                "is_active": (False, True),
                "left_at": (gone.left_at, None),
                "role": (gone.role, body.role),
            },
        )
    if not rejoined:
        if session.scalar(select(Participant.id).where(membership)) is not None:
            raise already
        session.add(
            Participant(
                conversation_id=conversation_id, agent_id=agent_id, role=body.role, joined_at=now
            )
        )
        flush_or_conflict(session, already)  # a concurrent add of the same agent
        _bump(
            session, Agent, Agent.id == agent_id, total_conversations=Agent.total_conversations + 1
        )
    _bump(
        session,
        Conversation,
        Conversation.id == conversation_id,
        participant_count=Conversation.participant_count + 1,
    )
    participant = session.scalars(
        select(Participant).where(membership).execution_options(populate_existing=True)
    ).one()
    return participant


def remove_participant(session: Session, conversation_id: int, agent_id: int) -> Participant:
    """Ends the agent's participation (``left_at`` now, inactive) and returns it; its messages
    stay. Raises NotFoundError (conversation, or the agent is not an active participant)."""
    _lock_conversation(session, conversation_id)
    membership = (Participant.conversation_id == conversation_id) & (
        Participant.agent_id == agent_id
    )
    # Conditional UPDATE: of two concurrent removals only one changes the row and counts.
    if not fits(Participant.agent_id.type, agent_id) or not _bump(
        session, Participant, membership & Participant.is_active, is_active=False, left_at=utcnow()
    ):
        raise NotFoundError(
            f"agent {agent_id} is not an active participant of conversation {conversation_id}"
        )
    _bump(
        session,
        Conversation,
        Conversation.id == conversation_id,
        participant_count=Conversation.participant_count - 1,
    )
    left = session.scalars(
        select(Participant).where(membership).execution_options(populate_existing=True)
    ).one()
    history.record(
        session,
        "participant",
        left.id,
        "update",
        {"is_active": (True, False), "left_at": (None, left.left_at)},
    )
    return left


def list_participants(
    session: Session,
    conversation_id: int,
    *,
    active: bool | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Participant]:
    """A page of the conversation's participants in join order (``active`` filters current or
    former ones). Raises NotFoundError (conversation)."""
    get_conversation(session, conversation_id)
    stmt = where_equal(
        select(Participant).where(Participant.conversation_id == conversation_id),
        (Participant.is_active, active, "active"),
    )
    return paginate(session, stmt, _PARTICIPANTS, limit=limit, cursor=cursor)


def add_message(
    session: Session, conversation_id: int, data: MessageCreate | Mapping[str, Any]
) -> Message:
    """Adds a message to an active conversation and returns it, updating the counters.

    Raises NotFoundError (conversation), ValidationError (bad field, sender not an active
    participant, parent message missing or in another conversation), ConflictError (the
    conversation is not active).
    """
    body = validated(MessageCreate, data, "message")
    _open_conversation(session, conversation_id)
    sender = body.sender_agent_id
    if sender is not None:
        active = select(Participant.id).where(
            Participant.conversation_id == conversation_id,
            Participant.agent_id == sender,
            Participant.is_active,
        )
        if session.scalar(active) is None:
            problem = f"agent {sender} is not an active participant of this conversation"
            raise ValidationError(problem, details={"fields": {"sender_agent_id": problem}})
    if body.parent_message_id is not None:
        parent = session.get(Message, body.parent_message_id)
        if parent is None or parent.conversation_id != conversation_id:
            problem = f"message {body.parent_message_id} is not in this conversation"
            raise ValidationError(problem, details={"fields": {"parent_message_id": problem}})
    message = Message(conversation_id=conversation_id, **body.model_dump(exclude={"metadata"}))
    if body.metadata is not None:
        message.meta = body.metadata
    session.add(message)
    session.flush()
    _bump(
        session,
        Conversation,
        Conversation.id == conversation_id,
        message_count=Conversation.message_count + 1,
    )
    if sender is not None:
        _bump(
            session,
            Agent,
            Agent.id == sender,
            total_messages_sent=Agent.total_messages_sent + 1,
            last_conversation_at=message.created_at,
        )
        _bump(
            session,
            Participant,
            (Participant.conversation_id == conversation_id) & (Participant.agent_id == sender),
            message_count=Participant.message_count + 1,
        )
    return message


def get_message(session: Session, message_id: int) -> Message:
    """The message with this id; NotFoundError if there is none."""
    return get_or_404(session, Message, message_id, "message")


def list_messages(
    session: Session,
    conversation_id: int,
    message_filter: MessageFilter | Mapping[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Message]:
    """A page of the conversation's messages in the order they were added, filtered by
    ``message_filter`` (:class:`~swarm_director.schemas.filters.MessageFilter` or a mapping of
    its fields: one thread; ``q`` searches the content: words and "quoted phrases", see
    :mod:`swarm_director.store.search`). Raises NotFoundError (conversation), ValidationError
    (bad filter, limit, cursor or query)."""
    get_conversation(session, conversation_id)
    wanted = MESSAGE_FILTERS.parse(message_filter)
    stmt = MESSAGE_FILTERS.apply(
        select(Message).where(Message.conversation_id == conversation_id), wanted
    )
    if wanted.q is not None:
        return search_page(
            core_connection(session),
            stmt,
            _MESSAGES,
            MESSAGES,
            Message.id,
            wanted.q,
            limit=limit,
            cursor=cursor,
            fetch=lambda page: session.scalars(page).all(),
        )
    return paginate(session, stmt, _MESSAGES, limit=limit, cursor=cursor)


#: The conditions of :class:`MessageFilter`.
MESSAGE_FILTERS = FilterRules(MessageFilter, thread_id=Message.thread_id, q=SEARCHED)


def edit_message(
    session: Session, message_id: int, data: MessageUpdate | Mapping[str, Any]
) -> Message:
    """Changes a message's content and/or metadata, marks it edited, counts the edit, and
    returns it. Raises NotFoundError, ValidationError."""
    changes = validated(MessageUpdate, data, "message edit").model_dump(exclude_unset=True)
    message = get_message(session, message_id)
    if not changes:
        return message
    values: dict[str, Any] = {"is_edited": True, "edit_count": Message.edit_count + 1}
    recorded: dict[str, tuple[Any, Any]] = {"edit_count": (message.edit_count, None)}
    if "content" in changes:
        values["content"] = changes["content"]
        recorded["content"] = (message.content, changes["content"])
    if "metadata" in changes:
        values["meta"] = sa.null() if changes["metadata"] is None else changes["metadata"]
        recorded["metadata"] = (message.meta, changes["metadata"])
    _bump(session, Message, Message.id == message_id, **values)
    session.refresh(message)
    recorded["edit_count"] = (recorded["edit_count"][0], message.edit_count)
    history.record(session, "message", message_id, "update", recorded)
    return message
