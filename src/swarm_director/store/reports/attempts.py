"""The work queue's attempts: how often they failed, by type and by agent (the durations,
from the same attempts: :mod:`swarm_director.store.reports.attempt_times`).

An attempt is a ``claim`` step recorded in the range (one row of ``task_attempts``, which
triggers keep equal to what the history says: :mod:`swarm_director.models.attempt`). It ended
with the step after it: ``complete``, or ``fail``, ``retry`` or ``expire`` (failed). The
failure rates count the range's whole UTC hours from the counts of their digests
(:mod:`swarm_director.models.attempt_digest`: one row an ended hour) where they hold, the
other whole hours from ``attempt_count_hours`` (:mod:`swarm_director.models.attempt_count`),
which counts the same attempts per hour, type, agent and outcome (144 rows an hour for a
dozen agents: a month of them took SQLite 90-100 ms to sum), and only the partial hours at
either end from ``task_attempts``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Connection, case, func, literal, select, true, union_all

from swarm_director.models.agent import Agent
from swarm_director.models.attempt import TaskAttempt
from swarm_director.models.attempt_count import CLAIMED, COMPLETED, FAILED, UNASSIGNED
from swarm_director.models.attempt_count_ddl import FAILED_END_ACTIONS
from swarm_director.models.attempt_digest import hour_runs, valid_digests
from swarm_director.models.task import Task
from swarm_director.schemas.reports import FailureRow
from swarm_director.store.reports.rollups import (
    ATTEMPT_COUNTS,
    HourSpan,
    attempt_totals,
    hours_within,
    read_edges,
)
from swarm_director.store.reports.window import Window


def attempts(since: datetime, until: datetime) -> Any:
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
            case((a.end_action.in_(FAILED_END_ACTIONS), 1), else_=0).label("failed"),
        )
        .join(Task, Task.id == a.task_id)
        .where(a.claimed_at >= since, a.claimed_at < until)
        .subquery("attempts")
    )


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
    from their digests' counts (:mod:`swarm_director.models.attempt_digest`) where they hold,
    else from ``attempt_count_hours``, and the partial hours at either end from their cheaper
    side
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
        digested, totals = _digest_counts(connection, span)
        for (kind_type, agent_text), counts in totals.items():
            for kind, n in zip((CLAIMED, COMPLETED, FAILED), counts, strict=True):
                add(kind, kind_type, int(agent_text), n)
        for first, end in hour_runs(span.first, span.end, digested):
            for kind, kind_type, agent_id, n in attempt_totals(connection, HourSpan(first, end)):
                add(kind, kind_type, agent_id, n)
        raw, counted = read_edges(
            connection, window.since, window.until, span, ATTEMPT_COUNTS, _rest_counts
        )
        for _start, (kind, kind_type, agent_id, n) in counted:
            add(kind, kind_type, agent_id, n)
    for since, until in raw:
        if since >= until:
            continue
        a = attempts(since, until).c
        stmt = select(
            a.type, a.agent_id, func.count(), func.sum(a.completed), func.sum(a.failed)
        ).group_by(a.type, a.agent_id)
        for kind_type, agent_id, claimed, completed, failed in connection.execute(stmt):
            for kind, n in ((CLAIMED, claimed), (COMPLETED, completed), (FAILED, failed)):
                add(kind, kind_type, agent_id, n)
    return sums


def _digest_counts(
    connection: Connection, span: HourSpan
) -> tuple[set[int], dict[tuple[str, str], list[int]]]:
    """The hours of ``span`` whose digest holds, and their counts summed per (type, agent
    id text): ``[claimed, completed, failed]`` (a month is 720 rows of a few dozen keys)."""
    digested: set[int] = set()
    totals: dict[tuple[str, str], list[int]] = {}
    for hour, text in connection.execute(valid_digests(span.first, span.end, "counts")):
        digested.add(int(hour))
        for kind_type, agents in json.loads(text).items():
            for agent_id, (claimed, completed, failed) in agents.items():
                total = totals.get((kind_type, agent_id))
                if total is None:
                    totals[(kind_type, agent_id)] = [claimed, completed, failed]
                else:
                    total[0] += claimed
                    total[1] += completed
                    total[2] += failed
    return digested, totals


def _rest_counts(since: datetime, until: datetime) -> CompoundSelect[Any]:
    """``(kind, type, agent, n)`` of the attempts claimed in ``[since, until)`` as
    ``attempt_count_hours`` keys them (agent :data:`UNASSIGNED` for none)."""
    a = attempts(since, until).c
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
