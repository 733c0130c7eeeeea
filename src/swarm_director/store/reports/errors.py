"""The most frequent errors: failed attempts' messages (from the history) and error-level log
records, grouped by their message with numbers and ids masked
(:mod:`swarm_director.models.log_pattern`).

Error logs carry their pattern from the moment they are written, and ``error_group_hours``
counts them per UTC hour and pattern, so the range's counts are a sum over its whole hours
plus the logs of the partial hours at either end; only the ten groups reported are read from
the logs themselves, for their newest examples, through the pattern's index. Error logs that
have no pattern (inserted by hand) are grouped by message and masked here. The attempts'
errors, which the history holds, are summed from the digests of the range's ended hours and
the failed steps of the rest (:mod:`swarm_director.store.reports.attempt_errors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from swarm_director.enums import LogLevel
from swarm_director.models.attempt_errors import EXAMPLES, instant
from swarm_director.models.error_group import UNMASKED
from swarm_director.models.log import AgentLog
from swarm_director.models.log_pattern import error_pattern
from swarm_director.models.rollup import summed
from swarm_director.schemas.reports import ErrorGroup
from swarm_director.store.reports.attempt_errors import MAX_DISTINCT, add_newest, attempt_tallies
from swarm_director.store.reports.rollups import ERROR_GROUPS, hours_within, read_edges
from swarm_director.store.reports.window import Window

#: Most groups reported; the ids kept as examples per group are as many as a failed
#: attempts' group keeps (:data:`~swarm_director.models.attempt_errors.EXAMPLES`).
TOP_ERRORS = 10
EXAMPLE_IDS = EXAMPLES
#: Longest example message reported.
EXAMPLE_LENGTH = 500


@dataclass
class _Group:
    """A group's count and its newest examples, ``(at, id, message)`` each."""

    count: int = 0
    examples: list[tuple[datetime, int, str]] = field(default_factory=list)

    def offer(self, at: datetime, id_: int, message: str) -> None:
        self.examples.append((at, id_, message))
        if len(self.examples) > 4 * EXAMPLE_IDS:
            self.examples = self.newest()

    def newest(self) -> list[tuple[datetime, int, str]]:
        return sorted(self.examples, key=lambda e: (e[0], e[1]), reverse=True)[:EXAMPLE_IDS]


def top_errors(connection: Connection, window: Window, *, rollup: bool = True) -> list[ErrorGroup]:
    """The :data:`TOP_ERRORS` most frequent error groups of failed attempts and error logs in
    the range, most frequent first. ``rollup=False``: the attempts' errors from the history
    alone, not from the digests of the range's hours (the same groups)."""
    patterned = _log_counts(connection, window)
    groups: dict[tuple[str, str], _Group] = {}
    if patterned.pop(UNMASKED, 0):
        for message, count, last_at, first_id in connection.execute(_unmasked_logs(window)):
            raw = message or ""
            group = groups.setdefault(("log", error_pattern(raw)), _Group())
            group.count += count
            group.offer(last_at, first_id, raw or "(no message)")
    for pattern, count in patterned.items():
        groups.setdefault(("log", pattern), _Group()).count += count
    tallies, raw_ranges = attempt_tallies(connection, window, rollup)
    for pattern, tally in tallies.items():
        groups[("task", pattern)] = _Group(tally.count)
    ranked = sorted(groups.items(), key=lambda item: (-item[1].count, item[0]))[:TOP_ERRORS]
    wanted = {pattern for (source, pattern), _group in ranked if source == "task"}
    add_newest(connection, raw_ranges, {p: tallies[p] for p in wanted})
    for (source, pattern), group in ranked:
        if source == "task":
            for stamped, task_id, message in tallies[pattern].newest:
                group.offer(instant(stamped), task_id, message or "(no message)")
        elif pattern in patterned:
            for at, id_, message in connection.execute(_newest_of(pattern, window)):
                group.offer(at, id_, message)
    # A group whose rows were all deleted between these statements (each reads what is
    # committed when it starts, on PostgreSQL) has no example left: it is gone, not reported.
    return [_reported(s, pattern, group) for (s, pattern), group in ranked if group.examples]


def _reported(source: str, pattern: str, group: _Group) -> ErrorGroup:
    newest = group.newest()
    return ErrorGroup(
        source="task" if source == "task" else "log",
        pattern=pattern,
        count=group.count,
        example=newest[0][2][:EXAMPLE_LENGTH],
        ids=sorted({id_ for _at, id_, _text in newest}),
        last_at=newest[0][0],
    )


def _in_range(since: datetime, until: datetime) -> list[Any]:
    return [
        AgentLog.log_level == LogLevel.ERROR,
        AgentLog.timestamp >= since,
        AgentLog.timestamp < until,
    ]


def _unmasked_logs(window: Window) -> Select[str, int, datetime, int]:
    """``(message, count, newest, lowest id)`` per distinct message of the range's error logs
    that have no pattern."""
    return (
        select(AgentLog.message, func.count(), func.max(AgentLog.timestamp), func.min(AgentLog.id))
        .where(*_in_range(window.since, window.until), AgentLog.error_pattern.is_(None))
        .group_by(AgentLog.message)
        .limit(MAX_DISTINCT)
    )


def _log_counts(connection: Connection, window: Window) -> dict[str, int]:
    """Error logs in the range per pattern (:data:`UNMASKED` for those without): the rollup's
    whole hours, the logs themselves for the partial hours at either end."""
    span = hours_within(window.since, window.until)
    if span is None:
        return _raw_counts(connection, window.since, window.until)
    totals = summed(*ERROR_GROUPS, span.first, span.end, per_hour=False)
    found: list[tuple[Any, ...]] = list(connection.execute(totals))
    raw, counted = read_edges(
        connection, window.since, window.until, span, ERROR_GROUPS, _raw_count_stmt
    )
    found += [row for _start, row in counted]
    for since, until in raw:
        found += _raw_counts(connection, since, until).items()
    counts: dict[str, int] = {}
    for pattern, count in found:
        if count:
            counts[str(pattern)] = counts.get(str(pattern), 0) + int(count)
    return counts


def _raw_counts(connection: Connection, since: datetime, until: datetime) -> dict[str, int]:
    if since >= until:
        return {}
    return {str(p): int(n) for p, n in connection.execute(_raw_count_stmt(since, until))}


def _raw_count_stmt(since: datetime, until: datetime) -> Select[str, int]:
    pattern = func.coalesce(AgentLog.error_pattern, UNMASKED)
    return select(pattern, func.count()).where(*_in_range(since, until)).group_by(pattern)


def _newest_of(pattern: str, window: Window) -> Select[datetime, int, str]:
    """The newest error logs of ``pattern`` in the range (the pattern's index)."""
    return (
        select(AgentLog.timestamp, AgentLog.id, AgentLog.message)
        .where(AgentLog.error_pattern == pattern, *_in_range(window.since, window.until))
        .order_by(AgentLog.timestamp.desc(), AgentLog.id.desc())
        .limit(EXAMPLE_IDS)
    )
