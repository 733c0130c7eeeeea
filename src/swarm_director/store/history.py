"""Reading and pruning the history of every change (see :mod:`swarm_director.models.history`;
the recording itself is :mod:`swarm_director.models.recording`)."""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, Table, select
from sqlalchemy.orm import Session

from swarm_director.models.history import HistoryEntry
from swarm_director.models.recording import (
    ADMIN_ENTITIES,
    ENTITIES,
    ENTITY_NAMES,
    entry_values,
    record,
    record_created,
    step,
)
from swarm_director.schemas.filters import HistoryFilter
from swarm_director.store._common import attribute_columns, core_connection
from swarm_director.store.filtering import FilterRules
from swarm_director.store.pagination import (
    DEFAULT_LIMIT,
    Ordering,
    Page,
    ordering_for,
    paginate_rows,
)

_TABLE: Table = HistoryEntry.__table__  # type: ignore[assignment]
_COLUMNS = attribute_columns(HistoryEntry)
_OLDEST_FIRST = Ordering("history", (HistoryEntry.id,))
_NEWEST_FIRST = _OLDEST_FIRST.reversed()

__all__ = [
    "ADMIN_ENTITIES",
    "ENTITIES",
    "ENTITY_NAMES",
    "entry_values",
    "list_history",
    "prune_history",
    "record",
    "record_created",
    "step",
]


def list_history(
    source: Session | Connection,
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
    ordering = ordering_for(order, asc=_OLDEST_FIRST, desc=_NEWEST_FIRST)
    stmt = HISTORY_FILTERS.apply(select(*_COLUMNS), HISTORY_FILTERS.parse(history_filter))
    if hidden:
        stmt = stmt.where(HistoryEntry.entity.not_in(list(hidden)))
    return paginate_rows(core_connection(source), stmt, ordering, limit=limit, cursor=cursor)


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
