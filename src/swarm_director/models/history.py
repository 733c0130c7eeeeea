"""History: one row per create, update and delete of the swarm's entities (an audit trail).

Rows are written in the transaction of the change they describe (see
:mod:`swarm_director.store.history`), so a change and its history commit or roll back together.
Logs are records already and are not repeated here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Computed, Index, String, Text, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from swarm_director.db.base import Base, utcnow
from swarm_director.db.types import JSONType, UTCDateTime
from swarm_director.models.log import BigId

#: The queue steps that end an attempt as failed, as SQL (the partial index's predicate, which
#: a query must repeat to use it).
FAILED_STEPS = "action IN ('fail', 'retry', 'expire')"
#: The emails' changes, as SQL (likewise).
EMAIL_STEPS = "entity = 'email'"
#: Characters of a step's ``last_error`` kept in ``error_message``: 500 characters are at
#: most 2,000 bytes, so an index entry stays under PostgreSQL's B-tree limit (about 2.7 kB)
#: whatever the error; the failures report's examples show as many.
ERROR_HEAD = 500


class _ErrorHead(FunctionElement[str]):
    """The first :data:`ERROR_HEAD` characters of the row's ``changes.last_error[1]``."""

    type = Text()
    inherit_cache = True


@compiles(_ErrorHead, "postgresql")
def _error_head_pg(_element: _ErrorHead, _compiler: SQLCompiler, **_kw: Any) -> str:
    return f"left(changes #>> '{{last_error,1}}', {ERROR_HEAD})"


@compiles(_ErrorHead)
def _error_head_sqlite(_element: _ErrorHead, _compiler: SQLCompiler, **_kw: Any) -> str:
    return f"substr(json_extract(changes, '$.last_error[1]'), 1, {ERROR_HEAD})"


class HistoryEntry(Base):
    """One change of one row: ``changes`` maps each changed field to ``[before, after]``
    (``before`` is null on create, ``after`` on delete)."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    """``agent``, ``task``, ``draft``, ``email``, ``conversation``, ``participant``,
    ``message`` or ``api_key``."""
    entity_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(20))
    """``create``, ``update``, ``delete``, or a queue step (``claim``, ``complete``, ``fail``,
    ``retry``, ``expire``, ``requeue``)."""
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType)
    actor: Mapped[str] = mapped_column(String(200))
    """Who: an API key's name, ``bootstrap``, ``cli:<user>@<host>``, ``system:<job>``."""
    request_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    error_message: Mapped[str | None] = mapped_column(Text, Computed(_ErrorHead(), persisted=True))
    """The first :data:`ERROR_HEAD` characters of a step's error (``changes.last_error``),
    computed by the database: what the failures report groups the attempts' errors by, from
    an index alone. (A migrated SQLite database computes it on read, ``VIRTUAL``: SQLite
    cannot add a stored column to a table; the index keeps it either way.)"""

    # One entity's history in order (GET /api/tasks/{id}/history), the swarm's in order with
    # an actor or action filter, and retention by time.
    __table_args__ = (
        Index("ix_history_entity_entity_id_id", "entity", "entity_id", "id"),
        Index("ix_history_actor_id", "actor", "id"),
        Index("ix_history_at", "at"),
        # The failures report's attempt errors: the failed steps of a range, few among the
        # history's rows; partial, so that no other step pays for it; with every column the
        # report reads, so that PostgreSQL answers from the index alone (each failed step
        # lives on a heap page of its own among the other steps). The entity first: SQLite's
        # planner without statistics prefers an index with more of the query's terms, and
        # would otherwise read every task step through (entity, entity_id, id).
        Index(
            "ix_history_failed_at",
            "entity",
            "at",
            "entity_id",
            "error_message",
            postgresql_where=text(FAILED_STEPS),
            sqlite_where=text(FAILED_STEPS),
        ),
        # The emails report's failures: the emails' changes of a range, few among the
        # history's rows. The entity first, as above.
        Index(
            "ix_history_email_at",
            "entity",
            "at",
            postgresql_where=text(EMAIL_STEPS),
            sqlite_where=text(EMAIL_STEPS),
        ),
    )
