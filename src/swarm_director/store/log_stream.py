"""Following ``agent_logs`` as rows are stored: the live tail's data access.

A follower reads rows in id order, after a cursor (the id of the last row it returned). Ids
are handed out in insert order, but on PostgreSQL transactions commit in any order: id 101 can
become visible before id 100 does. A follower that jumped past 100 would never return it. So
it only returns rows up to the *settled* id: the highest id below which every id is either
visible or has been missing for longer than :data:`GAP_GRACE_S` (a rolled-back insert, a
deleted row, a sequence jump after a crash). A missing id therefore delays a stream by at most
that long; an insert transaction that stays open longer than that can be missed by streams
that are open at the time (not by lists). On SQLite writers are serialized, so ids become
visible in order and gaps come only from deletes; but SQLite reuses the highest id after the
newest rows are deleted, which a follower already past it does not see.

Cost per poll: one index-only scan of the ids above the settled one (usually empty), which
returns their count and the highest (when they are contiguous, the settled id moves there; a
gap costs a second scan returning them), and, when some appeared, one filtered query for
them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, func, select

from swarm_director.models import AgentLog
from swarm_director.models.fulltext import LOGS
from swarm_director.schemas.filters import LogFilter
from swarm_director.store.logs import LOG_FILTERS, LogRecord, log_columns
from swarm_director.store.search import live_matching, parse_query

#: How long a missing id holds a stream back before it is taken as never coming.
GAP_GRACE_S = 5.0
#: Most ids examined, and most rows returned, per poll.
ID_SCAN = 5_000
BATCH = 500


class LogFollower:
    """Returns the log rows stored after a cursor, in id order, never one twice.

    ``log_filter`` is a :class:`~swarm_director.schemas.filters.LogFilter` (or a mapping of
    its fields), checked when the follower is made: ValidationError for a bad one. ``after_id``
    is a cursor from an earlier stream; None starts at the newest row (:meth:`start`).
    """

    def __init__(
        self,
        *,
        after_id: int | None = None,
        log_filter: LogFilter | Mapping[str, Any] | None = None,
        grace_s: float = GAP_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log_filter = LOG_FILTERS.parse(log_filter)
        self._select = LOG_FILTERS.apply(select(*log_columns()), self.log_filter)
        self._q = self.log_filter.q
        if self._q is not None:
            parse_query(self._q)  # a bad query is refused before the stream opens
        self._searching = False
        self.cursor = after_id
        self.settled = after_id
        self.grace_s = grace_s
        self.queries = 0
        """Statements run so far (the stream's cost to the database)."""
        self._gap: tuple[int, float] | None = None
        self._clock = clock

    def start(self, connection: Connection) -> int:
        """Fix the starting cursor (the newest id, when none was given) and return it."""
        if self._q is not None and not self._searching:
            dialect = connection.dialect.name
            self._select = self._select.where(live_matching(LOGS, AgentLog.id, self._q, dialect))
            self._searching = True
        if self.cursor is None:
            self.queries += 1
            newest = connection.execute(select(func.max(AgentLog.id))).scalar()
            self.cursor = self.settled = int(newest or 0)
        return self.cursor

    def poll(self, connection: Connection) -> list[LogRecord]:
        """The matching rows stored since the last poll (at most :data:`BATCH`; poll again
        at once when a full batch came back)."""
        self.start(connection)
        assert self.cursor is not None and self.settled is not None
        self._settle(connection)
        if self.settled <= self.cursor:
            return []
        self.queries += 1
        stmt = (
            self._select.where(AgentLog.id > self.cursor, AgentLog.id <= self.settled)
            .order_by(AgentLog.id)
            .limit(BATCH)
        )
        rows = list(connection.execute(stmt).all())
        self.cursor = rows[-1].id if len(rows) == BATCH else self.settled
        return rows

    def _settle(self, connection: Connection) -> None:
        assert self.settled is not None
        self.queries += 1
        ahead = (
            select(AgentLog.id)
            .where(AgentLog.id > self.settled)
            .order_by(AgentLog.id)
            .limit(ID_SCAN)
        )
        # Usually the next ids are all there: their count and the highest say so in one row,
        # without sending every id here to be checked (3x cheaper: docs/benchmarks.md).
        ahead_ids = ahead.subquery()
        count, highest = connection.execute(select(func.count(), func.max(ahead_ids.c.id))).one()
        if not count:
            return
        if highest - self.settled == count:
            self.settled = int(highest)
            self._gap = None
            return
        self.queries += 1
        ids = connection.execute(ahead).scalars()
        now = self._clock()
        settled = self.settled
        for row_id in ids:
            if row_id != settled + 1:
                first_missing = settled + 1
                if self._gap is None or self._gap[0] != first_missing:
                    self._gap = (first_missing, now)
                if now - self._gap[1] < self.grace_s:
                    break  # it may still commit: wait
            settled = row_id
            self._gap = None
        self.settled = settled
