"""Reading and keeping ``log_volume_hours`` (see :mod:`swarm_director.models.rollup`).

A report reads the whole UTC hours of its range from the rollup and counts the partial hours
at either end (below), so its figures are those of the raw query. That holds
for hour buckets and for day buckets in a zone whose offsets are whole hours and change on
whole hours; for minute buckets and other zones :func:`whole_hours` says no and the report
reads the logs.

A partial hour is read from whichever side of it can hold fewer rows (:func:`edges`): the
rows of the range's part of it, or the rollup's count of the hour less the rows of the rest
of it. A range that ends now (the usual case) thus reads only the rows of its last hour that
lie after its end (none, or the few written meanwhile), not the hour that a swarm writing
fast fills most: read from the logs, the last 24 hours' report read every log of the current
hour (docs/benchmarks.md, "Reports under live ingest")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, SelectBase, Table, select

from swarm_director.db.base import utcnow
from swarm_director.models.attempt_count import DELTAS as _ATTEMPT_DELTAS
from swarm_director.models.attempt_count import HOURS as _ATTEMPTS
from swarm_director.models.attempt_count import KEYS, UNASSIGNED
from swarm_director.models.error_group import DELTAS as _ERROR_DELTAS
from swarm_director.models.error_group import HOURS as _ERRORS
from swarm_director.models.rollup import (
    EPOCH,
    HOUR,
    LogVolumeDelta,
    LogVolumeHour,
    TaskCountDelta,
    TaskCountHour,
    epoch_hour,
    hour_start,
    summed,
)
from swarm_director.store.reports.window import Window

_ROLLUP = cast(Table, LogVolumeHour.__table__)
_TASKS = cast(Table, TaskCountHour.__table__)
_LOG_DELTAS = cast(Table, LogVolumeDelta.__table__)
_TASK_DELTAS = cast(Table, TaskCountDelta.__table__)


@dataclass(frozen=True)
class HourSpan:
    """The whole UTC hours ``[first, end)`` of a range (as :func:`epoch_hour` numbers)."""

    first: int
    end: int

    @property
    def since(self) -> datetime:
        return hour_start(self.first)

    @property
    def until(self) -> datetime:
        return hour_start(self.end)


def whole_hours(window: Window) -> HourSpan | None:
    """The whole hours of ``window`` the rollup can answer for, or None when its buckets are
    not unions of UTC hours (minute buckets; a zone offset or offset change off the hour)."""
    if window.bucket == "minute":
        return None
    for start, offset in window.offsets:
        if offset % 3600 or (start != window.since and start.minute + start.second):
            return None
    return hours_within(window.since, window.until)


def hours_within(since: datetime, until: datetime) -> HourSpan | None:
    """The whole UTC hours inside ``[since, until)``, or None when there is none."""
    first = -(-(since - EPOCH) // HOUR)  # ceiling
    end = epoch_hour(until)
    return HourSpan(first, end) if first < end else None


#: A rollup as :func:`read_edges` takes it: hours, deltas, keys, the count's column.
Rollup = tuple[Table, Table, list[str], str]
LOG_VOLUME: Rollup = (_ROLLUP, _LOG_DELTAS, ["log_level"], "logs")
ATTEMPT_COUNTS: Rollup = (_ATTEMPTS, _ATTEMPT_DELTAS, list(KEYS), "attempts")
ERROR_GROUPS: Rollup = (_ERRORS, _ERROR_DELTAS, ["pattern"], "logs")


def log_hours(connection: Connection, span: HourSpan) -> list[tuple[int, str, int]]:
    """``(epoch_hour, level, logs)`` of the hours in ``span`` that have logs."""
    stmt = summed(*LOG_VOLUME, span.first, span.end)
    return [(int(h), str(lvl), int(n)) for h, lvl, n in connection.execute(stmt) if n]


@dataclass(frozen=True)
class Edge:
    """A partial hour at one end of a range: the rows of ``[since, until)``, inside the UTC
    hour ``hour``, and the rest of that hour, ``[rest_since, rest_until)``."""

    hour: int
    since: datetime
    until: datetime
    rest_since: datetime
    rest_until: datetime
    by_rollup: bool
    """Read as the rollup's count of the hour less the rows of the rest (see :func:`edges`);
    else the rows of ``[since, until)`` themselves."""


def edges(since: datetime, until: datetime, span: HourSpan, now: datetime) -> list[Edge]:
    """The partial hours at either end of ``[since, until)`` around its whole hours ``span``.
    Each is read from the side of its hour that can hold fewer rows: the rows of the range's
    part, or the hour's rollup count less the rows of the rest. Rows lie up to ``now``, so a
    range that ends now reads the few rows written after its end in its last hour, not the
    whole hour; a range ending or starting late in a past hour reads the rest of it."""
    found = []
    if since < span.since:
        first = span.first - 1
        found.append(_edge(first, since, span.since, hour_start(first), since, now))
    if span.until < until:
        found.append(_edge(span.end, span.until, until, until, hour_start(span.end + 1), now))
    return found


def _edge(
    hour: int, since: datetime, until: datetime, rest_since: datetime, rest_until: datetime,
    now: datetime,
) -> Edge:  # fmt: skip
    def span(a: datetime, b: datetime) -> timedelta:
        return max(min(b, now) - a, timedelta(0))

    rollup = span(rest_since, rest_until) < span(since, until)
    return Edge(hour, since, until, rest_since, rest_until, rollup)


#: The partial hours of a range to read from the rows, as ``(since, until)``.
RawRanges = list[tuple[datetime, datetime]]
#: The counts of the others, as ``(the partial hour's start in the range, (*keys, n))``.
EdgeCounts = list[tuple[datetime, tuple[Any, ...]]]


def read_edges(
    connection: Connection,
    since: datetime,
    until: datetime,
    span: HourSpan,
    rollup: Rollup,
    rest: Callable[[datetime, datetime], SelectBase],
) -> tuple[RawRanges, EdgeCounts]:
    """The partial hours of ``[since, until)`` around its whole hours ``span``, each from its
    cheaper side (:func:`edges`): those whose own part is to be read from the rows, and the
    counts of the others, the ``rollup``'s hour less the rows of the rest, which
    ``rest(since, until)`` counts as ``(*keys, n)`` per key."""
    raw: RawRanges = []
    counted: EdgeCounts = []
    for edge in edges(since, until, span, utcnow()):
        if edge.by_rollup:
            rows = _edge_counts(
                connection, rollup, edge.hour, rest(edge.rest_since, edge.rest_until)
            )
            counted += [(edge.since, row) for row in rows]
        else:
            raw.append((edge.since, edge.until))
    return raw, counted


def _edge_counts(
    connection: Connection, rollup: Rollup, hour: int, rest: SelectBase
) -> list[tuple[Any, ...]]:
    """``(*keys, count)`` of the rollup ``(hours, deltas, keys, n)`` for ``hour`` less the
    rows ``rest`` counts (``(*keys, n)`` per key), in one statement: one snapshot."""
    hours, deltas, keys, n = rollup
    minus = rest.subquery()
    less = select(*(minus.c[i] for i in range(len(keys))), -minus.c[len(keys)])
    stmt = summed(hours, deltas, keys, n, hour, hour + 1, per_hour=False, less=less)
    return [(*row[:-1], int(row[-1])) for row in connection.execute(stmt) if row[-1]]


def task_rollup(by: str | None) -> Rollup:
    """``task_count_hours`` keyed by kind, and by ``by`` (type or priority) if given."""
    return (_TASKS, _TASK_DELTAS, ["kind", *([by] if by else [])], "tasks")


def task_hours(
    connection: Connection, span: HourSpan, by: str | None
) -> list[tuple[int, str, str | None, int]]:
    """``(epoch_hour, kind, key, tasks)`` of the hours in ``span``: ``key`` the type or
    priority with ``by``, else None."""
    stmt = summed(*task_rollup(by), span.first, span.end)
    found = []
    for row in connection.execute(stmt):
        count = int(row[-1])
        if count:
            found.append((int(row[0]), str(row[1]), str(row[2]) if by else None, count))
    return found


def attempt_totals(
    connection: Connection, span: HourSpan
) -> list[tuple[str, str, int | None, int]]:
    """``(kind, type, agent_id, attempts)`` of the attempts claimed in the hours of ``span``
    (``agent_id`` None for attempts without an agent), from ``attempt_count_hours``."""
    stmt = summed(*ATTEMPT_COUNTS, span.first, span.end, per_hour=False)
    return [
        (str(row[0]), str(row[1]), None if row[2] == UNASSIGNED else int(row[2]), int(row[3]))
        for row in connection.execute(stmt)
        if row[3]
    ]
