"""Agents and their hierarchy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from swarm_director.errors import ConflictError
from swarm_director.models import Agent, Conversation
from swarm_director.models.conversation import ConversationParticipant
from swarm_director.schemas.agents import AgentCreate, AgentUpdate
from swarm_director.schemas.filters import AgentFilter
from swarm_director.store._common import (
    flush_or_conflict,
    get_or_404,
    lock_hierarchy,
    require_ref,
    validated,
    would_create_cycle,
)
from swarm_director.store.filtering import FilterRules
from swarm_director.store.pagination import DEFAULT_LIMIT, Ordering, Page, paginate

_BY_ID = Ordering("agents", (Agent.id,))


def _name_taken(name: str) -> ConflictError:
    return ConflictError(
        f"an agent named {name!r} already exists",
        details={"fields": {"name": "already taken"}},
    )


def _check_name_free(session: Session, name: str) -> None:
    if session.scalar(select(Agent.id).where(Agent.name == name)) is not None:
        raise _name_taken(name)


def create_agent(session: Session, data: AgentCreate | Mapping[str, Any]) -> Agent:
    """Creates an agent and returns it (flushed, with its id).

    Raises ValidationError for bad fields or a missing parent, ConflictError when the name is
    taken.
    """
    body = validated(AgentCreate, data, "agent")
    _check_name_free(session, body.name)
    if body.parent_id is not None:
        require_ref(session, Agent, body.parent_id, "parent_id", "agent")
    agent = Agent(**body.model_dump())
    session.add(agent)
    flush_or_conflict(session, _name_taken(body.name))
    return agent


def get_agent(session: Session, agent_id: int) -> Agent:
    """The agent with this id; NotFoundError if there is none."""
    return get_or_404(session, Agent, agent_id, "agent")


def list_agents(
    session: Session,
    agent_filter: AgentFilter | Mapping[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Agent]:
    """A page of agents in id order, filtered by type, status and/or parent (``agent_filter``:
    an :class:`~swarm_director.schemas.filters.AgentFilter` or a mapping of its fields).
    Raises ValidationError for a bad filter, limit or cursor."""
    stmt = AGENT_FILTERS.apply(select(Agent), AGENT_FILTERS.parse(agent_filter))
    return paginate(session, stmt, _BY_ID, limit=limit, cursor=cursor)


#: The conditions of :class:`AgentFilter`.
AGENT_FILTERS = FilterRules(
    AgentFilter, agent_type=Agent.agent_type, status=Agent.status, parent_id=Agent.parent_id
)


def update_agent(session: Session, agent_id: int, data: AgentUpdate | Mapping[str, Any]) -> Agent:
    """Applies the fields present in ``data`` and returns the agent.

    Raises NotFoundError, ValidationError (bad field, missing parent), ConflictError (name
    taken, or the new parent would put the agent under itself).
    """
    changes = validated(AgentUpdate, data, "agent update").model_dump(exclude_unset=True)
    agent = get_agent(session, agent_id)
    if "name" in changes and changes["name"] != agent.name:
        _check_name_free(session, changes["name"])
    new_parent = changes.get("parent_id")
    if new_parent is not None and new_parent != agent.parent_id:
        require_ref(session, Agent, new_parent, "parent_id", "agent")
        lock_hierarchy(session, Agent.__tablename__)
        if would_create_cycle(session, Agent.id, Agent.parent_id, agent.id, new_parent):
            raise ConflictError(
                f"agent {new_parent} is agent {agent.id} or one of its subordinates",
                details={"fields": {"parent_id": "would create a cycle in the hierarchy"}},
            )
    for field, value in changes.items():
        setattr(agent, field, value)
    flush_or_conflict(session, _name_taken(agent.name))
    return agent


def delete_agent(session: Session, agent_id: int) -> None:
    """Deletes the agent. References to it (tasks, logs, drafts, conversations, messages, child
    agents) become null and its participations end, with the conversations' participant
    counts kept exact. Objects already loaded in ``session`` are expired so they show this.

    Raises NotFoundError.
    """
    agent = get_agent(session, agent_id)
    active = select(ConversationParticipant.conversation_id).where(
        ConversationParticipant.agent_id == agent_id, ConversationParticipant.is_active
    )
    session.execute(
        update(Conversation)
        .where(Conversation.id.in_(active))
        .values(participant_count=Conversation.participant_count - 1)
        .execution_options(synchronize_session=False)
    )
    session.delete(agent)
    session.flush()
    # ON DELETE SET NULL / CASCADE ran in the database; drop the stale copies.
    session.expire_all()
