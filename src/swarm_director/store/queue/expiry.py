"""Leases that ran out: the claims' sweep that puts their tasks back (or fails them), an
operator's requeue of one, and the lists of stuck and dead tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.db.actor import acting_as, system_actor
from swarm_director.enums import TaskStatus
from swarm_director.errors import ConflictError, NotFoundError
from swarm_director.store import history
from swarm_director.store._common import core_connection, fits
from swarm_director.store.prepared import Prepared
from swarm_director.store.queue.statements import (
    EXPIRED_WHERE,
    HOLDER,
    TASK_COLUMNS,
    TASKS,
    UPDATE_TASK,
    UPDATE_TASK_RETURNING,
)
from swarm_director.store.queue_wait import announce

#: How many expired leases one claim puts back at most (the rest wait for the next claim).
EXPIRE_BATCH = 100
EXPIRY_ACTOR = system_actor("lease-expiry")

_EXPIRED = Prepared(
    select(TASKS.c.id, TASKS.c.attempts, TASKS.c.max_attempts, TASKS.c.assigned_agent_id)
    .where(*EXPIRED_WHERE)
    .order_by(TASKS.c.lease_expires_at)
    .limit(EXPIRE_BATCH)
    .with_for_update(skip_locked=True)
)
#: Whether any lease ran out (a waiter's look: a claim would put its task back).
ANY_EXPIRED = select(TASKS.c.id).where(*EXPIRED_WHERE).limit(1)


def expire_leases(source: Session | Connection, now: datetime | None = None) -> int:
    """Put tasks whose lease expired back to pending (failed, when their attempts are used
    up), as ``system:lease-expiry``; returns how many. Claims call it; so does ``db maintain``."""
    connection = core_connection(source)
    now = now or utcnow()
    expired = _EXPIRED.rows(connection, {"now": now})
    if not expired:
        return 0
    with acting_as(EXPIRY_ACTOR):
        for row in expired:
            dead = row.attempts >= row.max_attempts
            status = TaskStatus.FAILED if dead else TaskStatus.PENDING
            error = f"lease expired (attempt {row.attempts} of {row.max_attempts})"
            connection.execute(
                UPDATE_TASK,
                {
                    "task_id": row.id,
                    "status": status,
                    "assigned_agent_id": None,
                    "lease_token": None,
                    "lease_expires_at": None,
                    "last_error": error,
                    "updated_at": now,
                },
            )
            history.record(
                connection,
                "task",
                row.id,
                "expire",
                {
                    "status": (TaskStatus.IN_PROGRESS, status),
                    "assigned_agent_id": (row.assigned_agent_id, None),
                    "attempt": (row.attempts, row.attempts),
                    "last_error": (None, error),
                },
            )
    if any(row.attempts < row.max_attempts for row in expired):
        announce(connection)
    return len(expired)


def requeue_task(
    source: Session | Connection, task_id: int, *, now: datetime | None = None
) -> Row[Any]:
    """Put one task whose lease expired back to pending now, by hand (an operator, not the
    next claim): unassigned, due at once, with one more attempt when its attempts are used
    up (that is what asking for it again means). A history row (``requeue``) names the
    current actor. Returns the task. Raises NotFoundError, ConflictError (not in progress, or
    its lease is still live: its agent may yet finish it; nothing is changed)."""
    connection = core_connection(source)
    now = now or utcnow()
    if not fits(TASKS.c.id.type, task_id):
        raise NotFoundError(f"task {task_id} not found", details={"id": task_id})
    row = HOLDER.first(connection, {"task_id": task_id})
    if row is None:
        raise NotFoundError(f"task {task_id} not found", details={"id": task_id})
    if row.status != TaskStatus.IN_PROGRESS:
        raise ConflictError(
            f"task {task_id} is {row.status.value}, not in progress; nothing was changed",
            details={"status": row.status.value, "reason": "not_in_progress"},
        )
    if row.lease_expires_at is not None and row.lease_expires_at > now:
        raise ConflictError(
            f"the lease of task {task_id} is live until "
            f"{row.lease_expires_at:%Y-%m-%dT%H:%M:%SZ}; nothing was changed",
            details={"status": row.status.value, "reason": "lease_live"},
        )
    attempts = max(row.max_attempts, row.attempts + 1)
    task = connection.execute(
        UPDATE_TASK_RETURNING,
        {
            "task_id": task_id,
            "status": TaskStatus.PENDING,
            "assigned_agent_id": None,
            "max_attempts": attempts,
            "not_before": None,
            "lease_token": None,
            "lease_expires_at": None,
            "updated_at": now,
        },
    ).one()
    changes: dict[str, tuple[Any, Any]] = {
        "status": (TaskStatus.IN_PROGRESS, TaskStatus.PENDING),
        "assigned_agent_id": (row.assigned_agent_id, None),
        "lease_expires_at": (row.lease_expires_at, None),
    }
    if attempts != row.max_attempts:
        changes["max_attempts"] = (row.max_attempts, attempts)
    history.record(connection, "task", task_id, "requeue", changes)
    announce(connection)
    return task


def list_expired_leases(connection: Connection, *, now: datetime | None = None) -> list[Row[Any]]:
    """Tasks still in progress whose lease has expired (stuck: their agent stopped), oldest
    expiry first, at most 1,000."""
    now = now or utcnow()
    stmt = (
        select(*TASK_COLUMNS)
        .where(TASKS.c.status == TaskStatus.IN_PROGRESS, TASKS.c.lease_expires_at <= now)
        .order_by(TASKS.c.lease_expires_at)
        .limit(1000)
    )
    return list(connection.execute(stmt).all())


def list_dead_tasks(connection: Connection) -> list[Row[Any]]:
    """Failed tasks that used up their attempts, newest first, at most 1,000."""
    stmt = (
        select(*TASK_COLUMNS)
        .where(
            TASKS.c.status == TaskStatus.FAILED,
            TASKS.c.attempts >= TASKS.c.max_attempts,
        )
        .order_by(TASKS.c.id.desc())
        .limit(1000)
    )
    return list(connection.execute(stmt).all())
