"""Recording and reading the history of every change (see :mod:`swarm_director.models.history`).

Every ORM change of a tracked entity is recorded by a ``after_flush`` hook on every Session, in
the same transaction, attributed to :func:`~swarm_director.store.actor.current_actor`; store
functions that write through Core statements (the work queue's claims) call :func:`record`
themselves. Bookkeeping that no person would call a change is not recorded: ``updated_at``,
a key's ``last_used_at``, a conversation's counters, a lease's heartbeat. Rows removed by the
database's own ``ON DELETE CASCADE`` are named by the delete of the row they belonged to.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from sqlalchemy import Connection, Row, Table, event, insert, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from swarm_director.db import utcnow
from swarm_director.errors import ValidationError
from swarm_director.models import (
    Agent,
    ApiKey,
    Conversation,
    ConversationParticipant,
    Draft,
    EmailMessage,
    Message,
    Task,
)
from swarm_director.models.history import HistoryEntry
from swarm_director.schemas.filters import HistoryFilter
from swarm_director.store._common import attribute_columns
from swarm_director.store.actor import current_actor
from swarm_director.store.filtering import FilterRules
from swarm_director.store.pagination import DEFAULT_LIMIT, Ordering, Page, paginate_rows

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
_COLUMNS = attribute_columns(HistoryEntry)
_OLDEST_FIRST = Ordering("history", (HistoryEntry.id,))
_NEWEST_FIRST = _OLDEST_FIRST.reversed()

Changes = dict[str, list[Any]]


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
        if attr.key in _UNRECORDED or attr.key not in state.dict:
            continue
        value = _json(state.dict[attr.key]) if attr.key not in _HIDDEN else "***"
        found[_field_name(attr.key)] = [None, value] if after else [value, None]
    return found


def _updates(obj: Any) -> Changes:
    state = inspect(obj)
    found: Changes = {}
    for attr in state.mapper.column_attrs:
        if attr.key in _UNRECORDED:
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
        "at": utcnow(),
    }


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
        session.connection().execute(insert(_TABLE), rows)


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
    values = {name: [_json(pair[0]), _json(pair[1])] for name, pair in changes.items()}
    target = connection.connection() if isinstance(connection, Session) else connection
    target.execute(insert(_TABLE), [_entry(entity, entity_id, action, values)])


def list_history(
    source: Connection,
    history_filter: HistoryFilter | Mapping[str, Any] | None = None,
    *,
    order: Literal["asc", "desc"] = "asc",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    hidden: Collection[str] = (),
) -> Page[Row[Any]]:
    """A page of history rows matching every filter of ``history_filter``
    (:class:`~swarm_director.schemas.filters.HistoryFilter` or a mapping of its fields), oldest
    first (``order="desc"``: newest first); ``since`` inclusive, ``until`` exclusive; rows of
    the ``hidden`` entities left out (what the reader's scope may not see). Raises
    ValidationError for an unknown entity, a bad filter, order, limit or cursor."""
    if order not in ("asc", "desc"):
        raise ValidationError(
            "invalid order", details={"fields": {"order": "must be 'asc' or 'desc'"}}
        )
    stmt = HISTORY_FILTERS.apply(select(*_COLUMNS), HISTORY_FILTERS.parse(history_filter))
    if hidden:
        stmt = stmt.where(HistoryEntry.entity.not_in(list(hidden)))
    ordering = _OLDEST_FIRST if order == "asc" else _NEWEST_FIRST
    return paginate_rows(source, stmt, ordering, limit=limit, cursor=cursor)


#: The conditions of :class:`HistoryFilter`.
HISTORY_FILTERS = FilterRules(
    HistoryFilter,
    entity=HistoryEntry.entity,
    entity_id=HistoryEntry.entity_id,
    actor=HistoryEntry.actor,
    action=HistoryEntry.action,
    since=(HistoryEntry.at, operator.ge),
    until=(HistoryEntry.at, operator.lt),
)


def prune_history(connection: Connection, before: datetime) -> int:
    """Deletes history rows older than ``before``; returns how many."""
    result = connection.execute(_TABLE.delete().where(_TABLE.c.at < before))
    return int(result.rowcount or 0)
