"""Tasks created, completed and failed per bucket, optionally one series per type, priority or
agent.

Created is the task's ``created_at``; completed and failed are the work queue's steps in the
history (``complete``; ``fail``, and an ``expire`` that used up the attempts), at the time
they were recorded. Groups are the task's current type, priority and assigned agent; a deleted
task's steps are not counted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from swarm_director.db.planner import unindexed
from swarm_director.models.agent import Agent
from swarm_director.models.history import HistoryEntry
from swarm_director.models.rollup import hour_start
from swarm_director.models.task import Task
from swarm_director.schemas.reports import ReportQuery, TaskCountsReport, TaskSeries
from swarm_director.store._common import core_connection
from swarm_director.store.reports.rollups import read_edges, task_hours, task_rollup, whole_hours
from swarm_director.store.reports.window import Window, resolve

_GROUPS: dict[str, Any] = {
    "type": Task.type,
    "priority": Task.priority,
    "agent": Task.assigned_agent_id,
}
COUNTS = ("created", "completed", "failed")


def failed_step() -> Any:
    """History rows of a task failing for good: ``fail``, or an ``expire`` on its last attempt."""
    return or_(
        HistoryEntry.action == "fail",
        and_(
            HistoryEntry.action == "expire",
            HistoryEntry.changes[("status", 1)].as_string() == "failed",
        ),
    )


def _key(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def task_counts(
    source: Session | Connection,
    query: ReportQuery | None = None,
    *,
    window: Window | None = None,
    rollup: bool = True,
) -> TaskCountsReport:
    """Tasks created, completed and failed per bucket of ``query``'s range (grouped by
    ``query.by``): whole UTC hours from ``task_count_hours`` where the buckets allow (not by
    agent), the rest from the tasks and history. Raises ValidationError for a bad range.
    ``rollup=False``: everything from the tasks and history (what tests and the benchmark
    compare with)."""
    query = query or ReportQuery()
    window = window or resolve(query)
    connection = core_connection(source)
    dialect = connection.dialect.name
    group = _GROUPS[query.by] if query.by else None
    extra = [group] if group is not None else []
    n = len(window.starts)
    series: dict[str | None, dict[str, list[int]]] = defaultdict(
        lambda: {name: [0] * n for name in COUNTS}
    )
    if group is None:
        series[None]  # one series even when nothing happened
    # Whole UTC hours from the rollup (it has no agent: a claim would move a task's counts),
    # the partial hours at either end from their cheaper side (rollups.edges), or everything,
    # from the tasks and their history.
    span = whole_hours(window) if rollup and query.by != "agent" else None
    ranges = [(window.since, window.until)]
    if span is not None:
        for hour, kind, key, count in task_hours(connection, span, query.by):
            series[key][kind][window.index_of(hour_start(hour))] += count
        ranges, counted = read_edges(
            connection,
            window.since,
            window.until,
            span,
            task_rollup(query.by),
            lambda since, until: _rest_counts(extra, since, until),
        )
        for start, (kind, *grouped, count) in counted:
            key = str(grouped[0]) if query.by else None
            series[key][str(kind)][window.index_of(start)] += count
    for since, until in ranges:
        if since >= until:
            continue
        rows: list[Any] = list(
            connection.execute(_raw_counts(window, dialect, extra, since, until))
        )
        for row in rows:
            key = _key(row[2]) if group is not None else None
            series[key][COUNTS[row[1]]][row[0]] += row[-1]
    labels = _labels(connection, query.by, list(series))
    ordered = sorted(series, key=lambda k: (k is None, _sort_key(k)))
    return TaskCountsReport(
        range=window.described(),
        by=query.by,
        series=[
            TaskSeries(key=key, label=labels.get(key, key or "all"), **series[key])
            for key in ordered
        ],
        totals={name: sum(sum(s[name]) for s in series.values()) for name in COUNTS},
    )


def _raw_counts(window: Window, dialect: str, extra: list[Any], since: Any, until: Any) -> Any:
    """One statement: creations from the tasks, completions and failures from the history,
    of ``[since, until)``, per bucket of ``window`` (and group)."""
    created_bucket = window.bucket_sql(Task.created_at, dialect).label("b")
    created = (
        select(created_bucket, literal(0).label("kind"), *extra, func.count().label("n"))
        .where(*_created(since, until))
        .group_by(created_bucket, *extra)
    )
    step_bucket = window.bucket_sql(HistoryEntry.at, dialect).label("b")
    kind = case((HistoryEntry.action == "complete", 1), else_=2).label("kind")
    steps = (
        select(step_bucket, kind, *extra, func.count().label("n"))
        .join(Task, Task.id == HistoryEntry.entity_id)
        .where(*_finished(since, until))
        .group_by(step_bucket, kind, *extra)
    )
    return union_all(created, steps)


def _rest_counts(extra: list[Any], since: Any, until: Any) -> CompoundSelect[Any]:
    """``(kind, *group, n)`` of ``[since, until)`` as ``task_count_hours`` keys them."""
    created = (
        select(literal(COUNTS[0]).label("kind"), *extra, func.count().label("n"))
        .where(*_created(since, until))
        .group_by(*extra)
    )
    kind = case((HistoryEntry.action == "complete", COUNTS[1]), else_=COUNTS[2]).label("kind")
    steps = (
        select(kind, *extra, func.count().label("n"))
        .join(Task, Task.id == HistoryEntry.entity_id)
        .where(*_finished(since, until))
        .group_by(kind, *extra)
    )
    return union_all(created, steps)


def _created(since: Any, until: Any) -> list[Any]:
    return [Task.created_at >= since, Task.created_at < until]


def _finished(since: Any, until: Any) -> list[Any]:
    return [
        # The range through the time index, not every task step through the entity's.
        unindexed(HistoryEntry.entity) == "task",
        HistoryEntry.at >= since,
        HistoryEntry.at < until,
        or_(HistoryEntry.action == "complete", failed_step()),
    ]


def _sort_key(key: str | None) -> tuple[int, str]:
    # Agents by id as numbers; types and priorities by name.
    if key is not None and key.isdigit():
        return (int(key), "")
    return (0, key or "")


def _labels(
    connection: Connection, by: str | None, keys: list[str | None]
) -> dict[str | None, str]:
    if by != "agent":
        return {None: "all" if by is None else "none"}
    ids = [int(k) for k in keys if k is not None]
    names = dict(connection.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids))).all())
    found: dict[str | None, str] = {str(i): names.get(i, f"agent {i}") for i in ids}
    found[None] = "unassigned"
    return found
