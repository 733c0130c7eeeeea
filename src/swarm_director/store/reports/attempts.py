"""The work queue's attempts: how long tasks waited and ran, how often they were retried, and
how often attempts failed, by type and by agent.

An attempt is a ``claim`` step recorded in the range (one row of ``task_attempts``, which
triggers keep equal to what the history says: :mod:`swarm_director.models.attempt`). It waited
from when the task was ready: the step before it (the task's creation, a retry, a lease
expiry), or that step's ``not_before`` when it was later (a due time, a retry's backoff). It
ran until the step after it: ``complete``, or ``fail``, ``retry`` or ``expire`` (failed).
Percentiles are nearest-rank (the value at rank ⌈p·n⌉), in seconds to the millisecond:
computed by PostgreSQL (``percentile_disc``), and on SQLite, which runs in this process, from
the attempts' few columns sorted here. The failure rates count the range's whole UTC hours
from ``attempt_count_hours`` (:mod:`swarm_director.models.attempt_count`), which counts the
same attempts per hour, type, agent and outcome, and only the partial hours at either end
from ``task_attempts``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Connection, case, func, literal, select, true, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from swarm_director.models.agent import Agent
from swarm_director.models.attempt import TaskAttempt
from swarm_director.models.attempt_count import CLAIMED, COMPLETED, FAILED, UNASSIGNED
from swarm_director.models.task import Task
from swarm_director.schemas.reports import DurationReport, DurationRow, FailureRow, ReportQuery
from swarm_director.store._common import core_connection
from swarm_director.store.driver_reads import sqlite_rows
from swarm_director.store.reports.rollups import (
    ATTEMPT_COUNTS,
    attempt_totals,
    hours_within,
    read_edges,
)
from swarm_director.store.reports.window import Window, resolve

_FAILED_ENDS = ("fail", "retry", "expire")


def _attempts(since: datetime, until: datetime) -> Any:
    """One row per attempt claimed in ``[since, until)``, of a task that still exists: task,
    its current type, agent, attempt number, wait, run and how it ended."""
    a = TaskAttempt
    return (
        select(
            a.task_id,
            Task.type,
            a.agent_id,
            a.attempt,
            a.wait_s,
            a.run_s,
            case((a.end_action == "complete", 1), else_=0).label("completed"),
            case((a.end_action.in_(_FAILED_ENDS), 1), else_=0).label("failed"),
        )
        .join(Task, Task.id == a.task_id)
        .where(a.claimed_at >= since, a.claimed_at < until)
        .subquery("attempts")
    )


def _rank(p: int, n: Any) -> Any:
    """⌈p·n/100⌉ in integer arithmetic (the same on both dialects)."""
    return (p * n + 99) // 100


def durations(
    source: Session | Connection, query: ReportQuery | None = None, *, window: Window | None = None
) -> DurationReport:
    """Wait and run percentiles and retries per task type, over the attempts claimed in the
    range. Raises ValidationError for a bad range."""
    window = window or resolve(query)
    connection = core_connection(source)
    a = _attempts(window.since, window.until).c
    if connection.dialect.name == "postgresql":
        figures = _pg_durations(connection, a)
    else:
        figures = _durations_here(connection, a)
    rows = [
        DurationRow(
            type=kind,
            attempts=attempts,
            tasks=tasks,
            retries=retries,
            retries_per_task=round(retries / tasks, 3),
            wait_p50_s=_seconds(w50),
            wait_p95_s=_seconds(w95),
            run_p50_s=_seconds(r50),
            run_p95_s=_seconds(r95),
        )
        for kind, attempts, tasks, retries, (w50, w95), (r50, r95) in figures
    ]
    return DurationReport(range=window.described(), types=rows)


#: The percentiles of the report, as whole percents and as fractions (the same ranks).
_PERCENTS = (50, 95)
_FRACTIONS = tuple(p / 100 for p in _PERCENTS)
#: Per task type (its name): attempts, tasks, retries, wait and run percentiles.
_Figures = list[tuple[str, int, int, int, tuple[Any, ...], tuple[Any, ...]]]


def _pg_durations(connection: Connection, a: Any) -> _Figures:
    """PostgreSQL's ordered-set aggregate: ``percentile_disc(p)`` is the value at rank
    ⌈p·n⌉ of the non-null values, the nearest rank (one sort per column and type, half the
    time of ranking every row with window functions: docs/benchmarks.md, "Attempts")."""
    fractions = postgresql.array([literal(f) for f in _FRACTIONS])
    stmt = (
        select(
            a.type,
            func.count(),
            func.count(a.task_id.distinct()),
            func.sum(case((a.attempt > 1, 1), else_=0)),
            func.percentile_disc(fractions).within_group(a.wait_s),
            func.percentile_disc(fractions).within_group(a.run_s),
        )
        .group_by(a.type)
        .order_by(a.type)
    )
    nothing = (None,) * len(_FRACTIONS)
    return [
        (kind.value, n, tasks, int(retries or 0), tuple(waits or nothing), tuple(runs or nothing))
        for kind, n, tasks, retries, waits, runs in connection.execute(stmt)
    ]


def _durations_here(connection: Connection, a: Any) -> _Figures:
    """SQLite: the attempts' few columns read in one pass with the driver's cursor and ranked
    here. SQLite runs in this process either way, and its window functions took three times
    as long as sorting the values in Python (docs/benchmarks.md, "Attempts")."""
    groups: dict[str, tuple[list[float], list[float], set[int], list[int]]] = {}
    stmt = select(a.type, a.task_id, a.attempt, a.wait_s, a.run_s)
    for batch in sqlite_rows(connection, stmt, 10_000, str):
        for kind, task_id, attempt, wait, run in batch:
            waits, runs, tasks, counts = groups.setdefault(kind, ([], [], set(), [0, 0]))
            counts[0] += 1
            counts[1] += attempt is not None and attempt > 1
            tasks.add(task_id)
            if wait is not None:
                waits.append(wait)
            if run is not None:
                runs.append(run)
    return [
        (kind, n, len(tasks), retries, _nearest_ranks(waits), _nearest_ranks(runs))
        for kind, (waits, runs, tasks, (n, retries)) in sorted(groups.items())
    ]


def _nearest_ranks(values: list[float]) -> tuple[float | None, ...]:
    """The values at ranks ⌈p·n/100⌉ of the sorted ``values`` (None when there are none)."""
    if not values:
        return (None,) * len(_PERCENTS)
    values.sort()
    return tuple(values[_rank(p, len(values)) - 1] for p in _PERCENTS)


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def failure_rows(
    connection: Connection, window: Window, *, rollup: bool = True
) -> dict[str, list[FailureRow]]:
    """Attempts claimed in the range by how they ended, per task type and per agent (from
    :func:`_counted`, summed here per type and per agent)."""
    by_type: dict[str, list[int]] = {}
    by_agent: dict[int | None, list[int]] = {}
    for (kind_type, agent_id), counts in _counted(connection, window, rollup).items():
        for total in (
            by_type.setdefault(kind_type, [0] * 3),
            by_agent.setdefault(agent_id, [0] * 3),
        ):
            for i, n in enumerate(counts):
                total[i] += n
    ids = [agent_id for agent_id in by_agent if agent_id is not None]
    names = {
        i: n for i, n in connection.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids)))
    }
    type_rows = [_row(kind_type, kind_type, counts) for kind_type, counts in by_type.items()]
    agent_rows = [
        _row(
            None if agent_id is None else str(agent_id),
            "unassigned" if agent_id is None else names.get(agent_id, f"agent {agent_id}"),
            counts,
        )
        for agent_id, counts in by_agent.items()
    ]
    return {"type": _worst_first(type_rows), "agent": _worst_first(agent_rows)}


def _counted(
    connection: Connection, window: Window, rollup: bool
) -> dict[tuple[str, int | None], list[int]]:
    """``[attempts, completed, failed]`` per task type and agent: the range's whole UTC hours
    from ``attempt_count_hours`` and the partial hours at either end from their cheaper side
    (:func:`~swarm_director.store.reports.rollups.edges`) (``rollup=False``: every attempt,
    what tests and the benchmark compare with)."""
    span = hours_within(window.since, window.until) if rollup else None
    sums: dict[tuple[str, int | None], list[int]] = {}
    column = {CLAIMED: 0, COMPLETED: 1, FAILED: 2}

    def add(kind: str, kind_type: Any, agent_id: Any, n: int) -> None:
        agent = None if agent_id is None or agent_id == UNASSIGNED else int(agent_id)
        sums.setdefault((str(getattr(kind_type, "value", kind_type)), agent), [0, 0, 0])[
            column[kind]
        ] += int(n or 0)

    raw = [(window.since, window.until)]
    if span is not None:
        for kind, kind_type, agent_id, n in attempt_totals(connection, span):
            add(kind, kind_type, agent_id, n)
        raw, counted = read_edges(
            connection, window.since, window.until, span, ATTEMPT_COUNTS, _rest_counts
        )
        for _start, (kind, kind_type, agent_id, n) in counted:
            add(kind, kind_type, agent_id, n)
    for since, until in raw:
        if since >= until:
            continue
        a = _attempts(since, until).c
        stmt = select(
            a.type, a.agent_id, func.count(), func.sum(a.completed), func.sum(a.failed)
        ).group_by(a.type, a.agent_id)
        for kind_type, agent_id, attempts, completed, failed in connection.execute(stmt):
            for kind, n in ((CLAIMED, attempts), (COMPLETED, completed), (FAILED, failed)):
                add(kind, kind_type, agent_id, n)
    return sums


def _rest_counts(since: datetime, until: datetime) -> CompoundSelect[Any]:
    """``(kind, type, agent, n)`` of the attempts claimed in ``[since, until)`` as
    ``attempt_count_hours`` keys them (agent :data:`UNASSIGNED` for none)."""
    a = _attempts(since, until).c
    agent = func.coalesce(a.agent_id, UNASSIGNED)
    return union_all(
        *(
            select(literal(kind).label("kind"), a.type, agent, func.count())
            .where(condition)
            .group_by(a.type, agent)
            for kind, condition in (
                (CLAIMED, true()),
                (COMPLETED, a.completed == 1),
                (FAILED, a.failed == 1),
            )
        )
    )


def _row(key: str | None, label: str, sums: list[int]) -> FailureRow:
    attempts, completed, failed = sums
    finished = completed + failed
    return FailureRow(
        key=key,
        label=label,
        attempts=attempts,
        completed=completed,
        failed=failed,
        running=attempts - finished,
        failure_rate=round(failed / finished, 4) if finished else None,
    )


def _worst_first(rows: list[FailureRow]) -> list[FailureRow]:
    return sorted(rows, key=lambda row: (-(row.failure_rate or 0), -row.attempts, row.label))
