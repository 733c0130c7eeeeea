"""The work queue's attempts: how long tasks waited and ran, how often they were retried, and
how often attempts failed, by type and by agent.

An attempt is a ``claim`` step recorded in the range (one row of ``task_attempts``, which
triggers keep equal to what the history says: :mod:`swarm_director.models.attempt`). It waited
from when the task was ready: the step before it (the task's creation, a retry, a lease
expiry), or that step's ``not_before`` when it was later (a due time, a retry's backoff). It
ran until the step after it: ``complete``, or ``fail``, ``retry`` or ``expire`` (failed).
Percentiles are nearest-rank (the value at rank ⌈p·n⌉), in seconds to the millisecond;
everything is computed by the database (percentiles with window functions), so only a row per
group comes back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.orm import Session

from swarm_director.models.agent import Agent
from swarm_director.models.attempt import TaskAttempt
from swarm_director.models.task import Task
from swarm_director.schemas.reports import DurationReport, DurationRow, FailureRow, ReportQuery
from swarm_director.store._common import core_connection
from swarm_director.store.reports.window import Window, resolve

_FAILED_ENDS = ("fail", "retry", "expire")


def _attempts(window: Window) -> Any:
    """One row per attempt claimed in the range, of a task that still exists: task, its
    current type, agent, attempt number, wait, run and how it ended."""
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
        .where(a.claimed_at >= window.since, a.claimed_at < window.until)
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
    a = _attempts(window).c
    by_type: dict[str, Any] = {"partition_by": a.type}
    ranked = select(
        a.type,
        a.task_id,
        a.attempt,
        a.wait_s,
        a.run_s,
        func.row_number().over(**by_type, order_by=a.wait_s.asc().nulls_last()).label("wr"),
        func.count(a.wait_s).over(**by_type).label("wn"),
        func.row_number().over(**by_type, order_by=a.run_s.asc().nulls_last()).label("rr"),
        func.count(a.run_s).over(**by_type).label("rn"),
    ).subquery("ranked")
    r = ranked.c
    stmt = (
        select(
            r.type,
            func.count(),
            func.count(r.task_id.distinct()),
            func.sum(case((r.attempt > 1, 1), else_=0)),
            func.max(case((r.wr == _rank(50, r.wn), r.wait_s))),
            func.max(case((r.wr == _rank(95, r.wn), r.wait_s))),
            func.max(case((r.rr == _rank(50, r.rn), r.run_s))),
            func.max(case((r.rr == _rank(95, r.rn), r.run_s))),
        )
        .group_by(r.type)
        .order_by(r.type)
    )
    rows = []
    for kind, attempts, tasks, retries, w50, w95, r50, r95 in connection.execute(stmt):
        rows.append(
            DurationRow(
                type=kind.value,
                attempts=attempts,
                tasks=tasks,
                retries=int(retries or 0),
                retries_per_task=round(int(retries or 0) / tasks, 3),
                wait_p50_s=_seconds(w50),
                wait_p95_s=_seconds(w95),
                run_p50_s=_seconds(r50),
                run_p95_s=_seconds(r95),
            )
        )
    return DurationReport(range=window.described(), types=rows)


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def failure_rows(connection: Connection, window: Window) -> dict[str, list[FailureRow]]:
    """Attempts claimed in the range by how they ended, per task type and per agent (one
    query: the attempts are grouped by both, and summed here)."""
    a = _attempts(window).c
    stmt = select(
        a.type, a.agent_id, func.count(), func.sum(a.completed), func.sum(a.failed)
    ).group_by(a.type, a.agent_id)
    by_type: dict[Any, list[int]] = {}
    by_agent: dict[Any, list[int]] = {}
    for kind, agent_id, attempts, completed, failed in connection.execute(stmt):
        for groups, key in ((by_type, kind), (by_agent, agent_id)):
            sums = groups.setdefault(key, [0, 0, 0])
            sums[0] += attempts
            sums[1] += int(completed or 0)
            sums[2] += int(failed or 0)
    ids = [agent_id for agent_id in by_agent if agent_id is not None]
    names = {
        i: n for i, n in connection.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids)))
    }
    type_rows = [_row(kind.value, kind.value, sums) for kind, sums in by_type.items()]
    agent_rows = [
        _row(
            None if agent_id is None else str(agent_id),
            "unassigned" if agent_id is None else names.get(agent_id, f"agent {agent_id}"),
            sums,
        )
        for agent_id, sums in by_agent.items()
    ]
    return {"type": _worst_first(type_rows), "agent": _worst_first(agent_rows)}


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
