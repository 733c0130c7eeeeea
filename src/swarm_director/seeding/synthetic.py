"""Large synthetic data sets for benchmarks: N tasks with many logs each, inserted fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from swarm_director.db import Database
from swarm_director.models import Agent, Task
from swarm_director.store import history, logs

_LEVELS = ("debug", "info", "info", "info", "info", "warning", "error")
_TYPES = ("email_draft", "document_review", "communication", "analysis")
_STATUSES = ("pending", "in_progress", "completed", "failed")
_TASKS_PER_TRANSACTION = 50


def _log_rows(task_no: int, count: int, start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "agent_type": "draft_writer" if i % 2 else "director",
            "message": f"synthetic task {task_no} step {i}",
            "log_level": _LEVELS[(task_no + i) % len(_LEVELS)],
            "session_id": f"synthetic-{task_no}",
            "timestamp": start + timedelta(seconds=i),
        }
        for i in range(count)
    ]


def seed_synthetic(
    database: Database,
    tasks: int,
    logs_per_task: int,
    *,
    progress: Callable[[int], None] | None = None,
    start: datetime | None = None,
) -> dict[str, int]:
    """Add ``tasks`` tasks with ``logs_per_task`` logs each; returns rows added per table.

    Commits every few tasks so a large run neither holds the write lock for long nor loses
    everything if interrupted. ``progress`` is called with the number of tasks just added.
    Timestamps spread back from ``start`` (default: now) over days, so retention has work.
    """
    start = start or datetime.now(UTC)
    with database.read() as session:
        agent_id = session.scalar(select(Agent.id).order_by(Agent.id).limit(1))
    added = 0
    for first in _batches(tasks):
        count = min(_TASKS_PER_TRANSACTION, tasks - first)
        with database.transaction() as session:
            rows = [
                {
                    "type": _TYPES[n % len(_TYPES)],
                    "status": _STATUSES[n % len(_STATUSES)],
                    "completed_at": start if _STATUSES[n % len(_STATUSES)] == "completed" else None,
                    "title": f"Synthetic task {n}",
                    "user_id": f"user-{n % 100}",
                    "priority": "medium",
                    "assigned_agent_id": agent_id,
                }
                for n in range(first, first + count)
            ]
            ids = list(session.scalars(insert(Task).returning(Task.id), rows))
            history.record_created(session, "task", list(zip(ids, rows, strict=True)))
            for n, task_id in zip(range(first, first + count), ids, strict=True):
                age = timedelta(days=(n * 7) % 90)
                logs.add_logs(session, task_id, _log_rows(n, logs_per_task, start - age))
        added += count
        if progress:
            progress(count)
    return {"tasks": added, "agent_logs": added * logs_per_task}


def _batches(total: int) -> Iterator[int]:
    yield from range(0, total, _TASKS_PER_TRANSACTION)
