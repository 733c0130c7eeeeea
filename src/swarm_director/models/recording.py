"""Recording every change of the tracked models in the history table, in the transaction of
the change (see :mod:`swarm_director.models.history`).

An ``after_flush`` hook on every Session records the ORM's creates, updates and deletes,
attributed to :func:`~swarm_director.db.actor.current_actor`; code that writes through Core
statements (the work queue's claims, counter bumps that are real changes) calls :func:`record`
itself. It is registered when the models are imported, so no write through them escapes it.
Bookkeeping that no person would call a change is not recorded: ``updated_at``, a key's
``last_used_at``, a conversation's counters, a lease's expiry moved by a heartbeat. Rows
removed by the database's own ``ON DELETE CASCADE`` are named by the delete of the row they
belonged to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Table, event, insert, inspect
from sqlalchemy.orm import Session, UOWTransaction

from swarm_director.db.actor import current_actor
from swarm_director.db.base import utcnow
from swarm_director.models.agent import Agent
from swarm_director.models.api_key import ApiKey
from swarm_director.models.conversation import Conversation, ConversationParticipant, Message
from swarm_director.models.draft import Draft
from swarm_director.models.email import EmailMessage
from swarm_director.models.history import HistoryEntry
from swarm_director.models.task import Task

#: Entity name of each tracked model.
ENTITIES: dict[type[Any], str] = {
    Agent: "agent",
    Task: "task",
    Draft: "draft",
    EmailMessage: "email",
    Conversation: "conversation",
    ConversationParticipant: "participant",
    Message: "message",
    ApiKey: "api_key",
}
ENTITY_NAMES = frozenset(ENTITIES.values())
#: What only admin keys may read (the API keeps key management under /api/admin and the CLI).
ADMIN_ENTITIES = frozenset({"api_key"})
#: Fields never recorded: bookkeeping, and the hash of a key's secret.
_UNRECORDED = frozenset(
    {"created_at", "updated_at", "last_used_at", "secret_hash", "participant_count"}
    | {"message_count", "lease_expires_at", "last_seen_at"}
)
#: Fields recorded as changed without their values.
_HIDDEN: frozenset[str] = frozenset({"lease_token"})
_ACTION_KEY = "swarm_director.history_action"
_TABLE: Table = HistoryEntry.__table__  # type: ignore[assignment]
# Built once; inline: nothing to read back (without it PostgreSQL returns each new row's id).
_INSERT = insert(_TABLE).inline()

Changes = dict[str, list[Any]]
#: Where history rows take their time from (see :func:`recorded_at`).
_CLOCK: ContextVar[Callable[[], datetime]] = ContextVar("history_clock", default=utcnow)


def _json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _field_name(key: str) -> str:
    return "metadata" if key == "meta" else key


def _values(obj: Any, *, after: bool) -> Changes:
    state = inspect(obj)
    found: Changes = {}
    for attr in state.mapper.column_attrs:
        # The id is the row's entity_id; an empty field says nothing a reader needs.
        if attr.key in _UNRECORDED or attr.key == "id" or state.dict.get(attr.key) is None:
            continue
        value = _json(state.dict[attr.key]) if attr.key not in _HIDDEN else "***"
        found[_field_name(attr.key)] = [None, value] if after else [value, None]
    return found


def _updates(obj: Any) -> Changes:
    state = inspect(obj)
    # Only attributes set since the load can have changed (asking every column for its
    # history costs more than the change's own UPDATE).
    touched = state.committed_state
    found: Changes = {}
    for attr in state.mapper.column_attrs:
        if attr.key in _UNRECORDED or attr.key not in touched:
            continue
        history = state.attrs[attr.key].history
        if not history.added:
            continue
        before = history.deleted[0] if history.deleted else None
        after = history.added[0]
        if before == after:
            continue
        if attr.key in _HIDDEN:
            found[_field_name(attr.key)] = ["***" if before else None, "***" if after else None]
        else:
            found[_field_name(attr.key)] = [_json(before), _json(after)]
    return found


def _entry(entity: str, entity_id: int, action: str, changes: Changes) -> dict[str, Any]:
    actor = current_actor()
    return {
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "changes": changes,
        "actor": actor.name,
        "request_id": actor.request_id,
        "at": _CLOCK.get()(),
    }


@contextmanager
def recorded_at(clock: Callable[[], datetime]) -> Iterator[None]:
    """History rows recorded inside the block take their time from ``clock`` instead of the
    wall clock: for seeding a past (the demo's week of history) and for tests that build a
    swarm at known times. Production code never uses it."""
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, _context: UOWTransaction) -> None:
    rows: list[dict[str, Any]] = []
    step = session.info.get(_ACTION_KEY)
    for obj in session.new:
        entity = ENTITIES.get(type(obj))
        if entity is not None:
            rows.append(_entry(entity, obj.id, "create", _values(obj, after=True)))
    for obj in session.dirty:
        entity = ENTITIES.get(type(obj))
        if entity is None:
            continue
        changes = _updates(obj)
        if changes:
            rows.append(_entry(entity, obj.id, step or "update", changes))
    for obj in session.deleted:
        entity = ENTITIES.get(type(obj))
        if entity is not None:
            rows.append(_entry(entity, obj.id, "delete", _values(obj, after=False)))
    if rows:
        session.connection().execute(_INSERT, rows[0] if len(rows) == 1 else rows)


@contextmanager
def step(session: Session, action: str) -> Iterator[None]:
    """Record the updates flushed inside the block as ``action`` (e.g. ``complete``) instead of
    ``update``. The block must flush before it ends."""
    session.info[_ACTION_KEY] = action
    try:
        yield
    finally:
        session.info.pop(_ACTION_KEY, None)


def record(
    connection: Connection | Session,
    entity: str,
    entity_id: int,
    action: str,
    changes: Mapping[str, tuple[Any, Any] | list[Any]],
) -> None:
    """Record one change made through a Core statement (the ORM's are recorded already)."""
    target = connection.connection() if isinstance(connection, Session) else connection
    target.execute(_INSERT, entry_values(entity, entity_id, action, changes))


def entry_values(
    entity: str, entity_id: int, action: str, changes: Mapping[str, tuple[Any, Any] | list[Any]]
) -> dict[str, Any]:
    """The history row :func:`record` inserts for one change, as the columns' values (the
    actor, the request id and the time filled in): for a caller that runs the insert itself
    (the work queue's prepared statements)."""
    values = {name: [_json(pair[0]), _json(pair[1])] for name, pair in changes.items()}
    return _entry(entity, entity_id, action, values)


def record_created(
    connection: Connection | Session, entity: str, created: Sequence[tuple[int, Mapping[str, Any]]]
) -> None:
    """Record many rows created by one Core insert (``(id, fields)`` each), in one statement."""
    if not created:
        return
    target = connection.connection() if isinstance(connection, Session) else connection
    rows = [
        _entry(entity, row_id, "create", {k: [None, _json(v)] for k, v in fields.items()})
        for row_id, fields in created
    ]
    target.execute(_INSERT, rows)
