"""A lease's life after its claim: heartbeats keep it, a completion or a failure ends it.
Each checks the caller's token against the task's locked row first, and changes nothing when
the lease is no longer the caller's."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.enums import TaskStatus
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.schemas.queue import MAX_LEASE_S
from swarm_director.store import history
from swarm_director.store._common import core_connection, fits
from swarm_director.store.queue.statements import (
    AGENT_SEEN,
    COMPLETE,
    EXTEND,
    FAIL,
    HISTORY,
    HOLDER,
    TASKS,
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before a failed task is retried: ``base_s * 2**(attempt-1)`` capped at ``cap_s``,
    with jitter (a random half to all of it) so that failures of one cause spread out."""

    base_s: float = 5.0
    cap_s: float = 3600.0

    def delay(self, attempt: int) -> timedelta:
        full = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        return timedelta(seconds=full * random.uniform(0.5, 1.0))  # noqa: S311 (not secret)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed task (a row with :class:`Task`'s attributes) and its lease."""

    task: Any
    lease_token: str
    lease_expires_at: datetime


def lease_length(lease_s: float) -> timedelta:
    if not 0 < lease_s <= MAX_LEASE_S:
        raise ValidationError(
            "invalid lease",
            details={"fields": {"lease_s": f"must be over 0 and at most {MAX_LEASE_S:g} seconds"}},
        )
    return timedelta(seconds=lease_s)


def holder(connection: Connection, task_id: int, token: str, now: datetime) -> Any:
    """The task's row, locked, when ``token`` holds its live lease; else NotFoundError or
    ConflictError saying why not (nothing is changed either way)."""
    if not fits(TASKS.c.id.type, task_id):
        raise NotFoundError(f"task {task_id} not found", details={"id": task_id})
    row = HOLDER.first(connection, {"task_id": task_id})
    if row is None:
        raise NotFoundError(f"task {task_id} not found", details={"id": task_id})
    if (
        row.status != TaskStatus.IN_PROGRESS
        or row.lease_token is None
        or not secrets.compare_digest(row.lease_token.encode(), token.encode())
    ):
        raise ConflictError(
            f"task {task_id} is not leased with this token (it is {row.status.value}); "
            "nothing was changed",
            details={"status": row.status.value, "reason": "not_the_lease_holder"},
        )
    if row.lease_expires_at is None or row.lease_expires_at <= now:
        raise ConflictError(
            f"the lease of task {task_id} expired at {row.lease_expires_at:%Y-%m-%dT%H:%M:%SZ}; "
            "nothing was changed",
            details={"status": row.status.value, "reason": "lease_expired"},
        )
    return row


def heartbeat(
    source: Session | Connection,
    task_id: int,
    lease_token: str,
    *,
    lease_s: float = 60.0,
    now: datetime | None = None,
) -> datetime:
    """Extend the live lease ``lease_token`` of task ``task_id`` to ``lease_s`` from now and
    note the agent's sign of life; returns the new expiry. No history row. Raises
    NotFoundError, ConflictError (not the holder, or the lease expired), ValidationError."""
    lease = lease_length(lease_s)
    connection = core_connection(source)
    now = now or utcnow()
    row = holder(connection, task_id, lease_token, now)
    expires = now + lease
    EXTEND.run(connection, {"task_id": task_id, "lease_expires_at": expires, "now": now})
    if row.assigned_agent_id is not None:
        AGENT_SEEN.run(connection, {"agent_id": row.assigned_agent_id, "now": now})
    return expires


def complete_task(
    source: Session | Connection,
    task_id: int,
    lease_token: str,
    *,
    result: Any = None,
    now: datetime | None = None,
) -> Any:
    """Complete task ``task_id`` held with ``lease_token`` (storing ``result``); returns the
    task. Raises NotFoundError, ConflictError (not the holder, or the lease expired)."""
    connection = core_connection(source)
    now = now or utcnow()
    row = holder(connection, task_id, lease_token, now)
    task = COMPLETE.first(connection, {"task_id": task_id, "result": result, "now": now})
    changes = {
        "status": (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED),
        "attempt": (row.attempts, row.attempts),
        "result": (row.result, result),
    }
    HISTORY.run(connection, history.entry_values("task", task_id, "complete", changes))
    return task


def fail_task(
    source: Session | Connection,
    task_id: int,
    lease_token: str,
    error: str,
    *,
    retry: bool = True,
    backoff: Backoff = Backoff(),
    now: datetime | None = None,
) -> Any:
    """Fail the attempt of task ``task_id`` held with ``lease_token``: back to pending after
    a backoff while attempts remain (and ``retry``), else failed for good; ``error`` is kept as
    ``last_error``. Returns the task. Raises NotFoundError, ConflictError, ValidationError."""
    if not isinstance(error, str) or not error.strip():
        raise ValidationError(
            "invalid failure", details={"fields": {"error": "must be a non-empty message"}}
        )
    connection = core_connection(source)
    now = now or utcnow()
    row = holder(connection, task_id, lease_token, now)
    again = retry and row.attempts < row.max_attempts
    status = TaskStatus.PENDING if again else TaskStatus.FAILED
    due = now + backoff.delay(row.attempts) if again else None
    params = {
        "task_id": task_id,
        "status": status,
        "assigned_agent_id": None if again else row.assigned_agent_id,
        "not_before": due,
        "last_error": error,
        "now": now,
    }
    task = FAIL.first(connection, params)
    changes: dict[str, tuple[Any, Any]] = {
        "status": (TaskStatus.IN_PROGRESS, status),
        "attempt": (row.attempts, row.attempts),
        "last_error": (row.last_error, error),
    }
    if due is not None:
        changes["not_before"] = (None, due)
        changes["assigned_agent_id"] = (row.assigned_agent_id, None)
    action = "retry" if again else "fail"
    HISTORY.run(connection, history.entry_values("task", task_id, action, changes))
    return task
