"""Reading and pruning the history of every change (see :mod:`swarm_director.models.history`;
the recording itself is :mod:`swarm_director.models.recording`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, Table, select
from sqlalchemy.orm import Session

from swarm_director.errors import ValidationError
from swarm_director.models.history import HistoryEntry
from swarm_director.models.recording import (
    ADMIN_ENTITIES,
    ENTITIES,
    ENTITY_NAMES,
    record,
    record_created,
    step,
)
from swarm_director.store._common import (
    attribute_columns,
    check_filter,
    core_connection,
    where_equal,
)
from swarm_director.store.pagination import DEFAULT_LIMIT, Ordering, Page, paginate_rows

_TABLE: Table = HistoryEntry.__table__  # type: ignore[assignment]
_COLUMNS = attribute_columns(HistoryEntry)
_OLDEST_FIRST = Ordering("history", (HistoryEntry.id,))
_NEWEST_FIRST = _OLDEST_FIRST.reversed()

__all__ = [
    "ADMIN_ENTITIES",
    "ENTITIES",
    "ENTITY_NAMES",
    "list_history",
    "prune_history",
    "record",
    "record_created",
    "step",
]


def list_history(
    source: Session | Connection,
    *,
    entity: str | None = None,
    entity_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    order: Literal["asc", "desc"] = "asc",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    hidden: Collection[str] = (),
) -> Page[Row[Any]]:
    """A page of history rows matching every filter given, oldest first (``order="desc"``:
    newest first); ``since`` inclusive, ``until`` exclusive; rows of the ``hidden`` entities
    left out (what the reader's scope may not see). Raises ValidationError for an unknown
    entity, a bad filter, order, limit or cursor."""
    if entity is not None and entity not in ENTITY_NAMES:
        raise ValidationError(
            "invalid entity",
            details={"fields": {"entity": f"must be one of {', '.join(sorted(ENTITY_NAMES))}"}},
        )
    if order not in ("asc", "desc"):
        raise ValidationError(
            "invalid order", details={"fields": {"order": "must be 'asc' or 'desc'"}}
        )
    stmt = where_equal(
        select(*_COLUMNS),
        (HistoryEntry.entity, entity, "entity"),
        (HistoryEntry.entity_id, entity_id, "entity_id"),
        (HistoryEntry.actor, actor, "actor"),
        (HistoryEntry.action, action, "action"),
    )
    if since is not None:
        check_filter(HistoryEntry.at, since, "since")
        stmt = stmt.where(HistoryEntry.at >= since)
    if until is not None:
        check_filter(HistoryEntry.at, until, "until")
        stmt = stmt.where(HistoryEntry.at < until)
    if hidden:
        stmt = stmt.where(HistoryEntry.entity.not_in(list(hidden)))
    ordering = _OLDEST_FIRST if order == "asc" else _NEWEST_FIRST
    return paginate_rows(core_connection(source), stmt, ordering, limit=limit, cursor=cursor)


def prune_history(connection: Connection, before: datetime) -> int:
    """Deletes history rows older than ``before``; returns how many."""
    result = connection.execute(_TABLE.delete().where(_TABLE.c.at < before))
    return int(result.rowcount or 0)
