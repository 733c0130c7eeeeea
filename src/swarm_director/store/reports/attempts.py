"""The work queue's attempts, read from the history: how long tasks waited and ran, how often
they were retried, and how often attempts failed, by type and by agent.

An attempt is a ``claim`` step recorded in the range. It waited from when the task was ready:
the step before it (the task's creation, a retry, a lease expiry), or that step's
``not_before`` when it was later (a due time, a retry's backoff). It ran until the step after
it: ``complete``, or ``fail``, ``retry`` or ``expire`` (failed). Percentiles are nearest-rank
(the value at rank ⌈p·n⌉), in seconds to the millisecond; everything is computed by the
database (percentiles with window functions), so only a row per group comes back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Float, and_, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from swarm_director.models.agent import Agent
from swarm_director.models.history import HistoryEntry
from swarm_director.models.task import Task
from swarm_director.schemas.reports import DurationReport, DurationRow, FailureRow, ReportQuery
from swarm_director.store._common import core_connection
from swarm_director.store.reports.window import Window, epoch_seconds_exact, resolve

#: Ranges up to this long take the lookup shape (measured: bench/reports.py, docs/benchmarks.md).
LOOKUP_RANGE = timedelta(days=2)
_QUEUE_STEPS = ("create", "claim", "complete", "fail", "retry", "expire")
_FAILED_ENDS = ("fail", "retry", "expire")


def _attempts(window: Window, dialect: str) -> Any:
    """One row per attempt claimed in the range: task, agent, attempt number, wait, run and
    how it ended. Two shapes of one query, the same figures (the tests run both): a short
    range looks up the steps around each of its claims; a long one reads every step of the
    tasks it touches in one pass, cheaper than that many lookups."""
    if window.until - window.since <= LOOKUP_RANGE:
        return _attempts_by_lookup(window, dialect)
    return _attempts_by_window(window, dialect)


def _attempts_by_lookup(window: Window, dialect: str) -> Any:
    """The attempts of a short range, looked up claim by claim.

    The step before and the step after each claim are read by correlated subqueries on the
    history's (entity, entity_id, id) index, so a short range reads a few rows per claim
    instead of the whole history of every task it touches (window functions over all of a
    task's steps made PostgreSQL scan the table: 150 ms for a day of 30,000 tasks, measured).
    """
    c = aliased(HistoryEntry, name="claim")

    def step_of_task(alias: Any) -> list[Any]:
        return [
            alias.entity == "task",
            alias.entity_id == c.entity_id,
            alias.action.in_(_QUEUE_STEPS),
        ]

    before = aliased(HistoryEntry, name="before")
    at_s = epoch_seconds_exact(before.at, dialect)
    due = before.changes[("not_before", 1)].as_string()
    due_s = epoch_seconds_exact(due if dialect == "sqlite" else cast(due, before.at.type), dialect)
    # Only a creation or a retry carries a due time: its JSON is read for those alone.
    ready = (
        select(
            case((and_(before.action.in_(("create", "retry")), due_s > at_s), due_s), else_=at_s)
        )
        .where(*step_of_task(before), before.id < c.id)
        .order_by(before.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    after = aliased(HistoryEntry, name="after")
    next_step = select(after.action).where(*step_of_task(after), after.id > c.id)
    next_action = next_step.order_by(after.id).limit(1).scalar_subquery()
    next_s = (
        select(epoch_seconds_exact(after.at, dialect))
        .where(*step_of_task(after), after.id > c.id)
        .order_by(after.id)
        .limit(1)
        .scalar_subquery()
    )
    claimed_s = epoch_seconds_exact(c.at, dialect)
    claims = (
        select(
            c.entity_id.label("task_id"),
            c.changes[("assigned_agent_id", 1)].as_integer().label("agent_id"),
            c.changes[("attempt", 1)].as_integer().label("attempt"),
            claimed_s.label("at_s"),
            ready.label("ready_s"),
            next_action.label("next_action"),
            next_s.label("next_s"),
        )
        .where(c.entity == "task", c.action == "claim", c.at >= window.since, c.at < window.until)
        # Computed once: PostgreSQL would otherwise inline it and run the subqueries again for
        # each use of their columns below.
        .cte("claims")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return _attempt_rows(claims.c).subquery("attempts")


def _attempts_by_window(window: Window, dialect: str) -> Any:
    """The attempts of a long range: one pass of window functions over every queue step of
    the tasks claimed in it (the attempt number counted, not read)."""
    h = HistoryEntry
    claimed = (
        select(h.entity_id)
        .where(
            h.entity == "task",
            h.action == "claim",
            h.at >= window.since,
            h.at < window.until,
        )
        .distinct()
    )
    by_task: dict[str, Any] = {"partition_by": h.entity_id, "order_by": h.id}
    at_s = epoch_seconds_exact(h.at, dialect)
    due = h.changes[("not_before", 1)].as_string()
    due_s = epoch_seconds_exact(due if dialect == "sqlite" else cast(due, h.at.type), dialect)
    # Only a creation or a retry carries a due time, only a claim an agent: the JSON is read
    # for those rows alone.
    ready_s = case((and_(h.action.in_(("create", "retry")), due_s > at_s), due_s), else_=at_s)
    steps = (
        select(
            h.entity_id.label("task_id"),
            h.action,
            h.at,
            at_s.label("at_s"),
            case((h.action == "claim", h.changes[("assigned_agent_id", 1)].as_integer())).label(
                "agent_id"
            ),
            func.lag(ready_s).over(**by_task).label("ready_s"),
            func.lead(h.action).over(**by_task).label("next_action"),
            func.lead(at_s).over(**by_task).label("next_s"),
            func.sum(case((h.action == "claim", 1), else_=0))
            .over(**by_task, rows=(None, 0))
            .label("attempt"),
        )
        .where(h.entity == "task", h.action.in_(_QUEUE_STEPS), h.entity_id.in_(claimed))
        .subquery("steps")
    )
    s = steps.c
    only_claims = (s.action == "claim", s.at >= window.since, s.at < window.until)
    return _attempt_rows(s).where(*only_claims).subquery("attempts")


def _attempt_rows(s: Any) -> Any:
    """An attempt a row from the claim steps ``s`` (either shape's columns: task_id, agent_id,
    attempt, at_s, ready_s, next_s, next_action): its wait, its run and how it ended."""
    wait = func.round(cast(s.at_s - s.ready_s, Float) * 1000) / 1000.0
    run = case(
        (s.next_action == "complete", func.round(cast(s.next_s - s.at_s, Float) * 1000) / 1000.0)
    )
    return select(
        s.task_id,
        Task.type,
        s.agent_id,
        s.attempt,
        wait.label("wait_s"),
        run.label("run_s"),
        case((s.next_action == "complete", 1), else_=0).label("completed"),
        case((s.next_action.in_(_FAILED_ENDS), 1), else_=0).label("failed"),
    ).join(Task, Task.id == s.task_id)


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
    a = _attempts(window, connection.dialect.name).c
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
    a = _attempts(window, connection.dialect.name).c
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
