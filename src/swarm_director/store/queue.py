"""The work queue: agents claim ready tasks under a lease, keep it alive, and complete or fail
them with it.

A claim takes the highest-priority, oldest ready task (pending and due; a task whose lease
expired is first put back to pending, or failed when its attempts are used up) and marks it
``in_progress`` for the claiming agent with a fresh random lease token until
``lease_expires_at``. Heartbeat, complete and fail carry that token: a call whose lease is no
longer the holder's (expired, taken over, finished) is refused with ConflictError and changes
nothing, so a task is completed at most once in effect, whatever a worker that comes back from
the dead says. On PostgreSQL claims lock with ``FOR UPDATE SKIP LOCKED`` (claimers never wait on
each other); SQLite serializes writers already.

Every claim, completion, failure and expiry is a history row (actions ``claim``, ``complete``,
``retry``, ``fail``, ``expire``); heartbeats are not. Statements are Core (one or two per step)
on the caller's connection (the API gives each call a Core transaction, ``Database.writes``,
not a session): the queue's hot path builds no ORM objects, and its statements are built once
with bound parameters (building a statement costs more than running it).
"""

from __future__ import annotations

import functools
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, Row, Select, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.db.actor import acting_as, system_actor
from swarm_director.enums import TaskPriority, TaskStatus, TaskType
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import Agent, Task
from swarm_director.store import history
from swarm_director.store._common import attribute_columns, core_connection, fits
from swarm_director.store.queue_wait import announce

_TASKS: Table = Task.__table__  # type: ignore[assignment]
_AGENTS: Table = Agent.__table__  # type: ignore[assignment]
_TASK_COLUMNS = attribute_columns(Task)
#: Claim order: the highest priority first, then the oldest (lowest id).
PRIORITY_ORDER = (TaskPriority.CRITICAL, TaskPriority.HIGH, TaskPriority.MEDIUM, TaskPriority.LOW)
#: How many expired leases one claim puts back at most (the rest wait for the next claim).
EXPIRE_BATCH = 100
MAX_LEASE_S = 24 * 3600.0
EXPIRY_ACTOR = system_actor("lease-expiry")

# The statements, built once. An update sets the columns named by its parameters' keys.
_AGENT_SEEN = update(_AGENTS).where(_AGENTS.c.id == bindparam("agent_id"))
#: A claim's first statement: the agent's sign of life, and the check that it exists.
_AGENT_CLAIMS = _AGENT_SEEN.values(last_seen_at=bindparam("now")).returning(_AGENTS.c.id)
_UPDATE = update(_TASKS).where(_TASKS.c.id == bindparam("task_id"))
_UPDATE_RETURNING = _UPDATE.returning(*_TASK_COLUMNS)
_HOLDER = (
    select(*_TASK_COLUMNS)
    .where(_TASKS.c.id == bindparam("task_id"))
    .with_for_update(key_share=True)
)
_EXPIRED_WHERE = (
    _TASKS.c.status == TaskStatus.IN_PROGRESS,
    _TASKS.c.lease_expires_at <= bindparam("now"),
)
_EXPIRED = (
    select(_TASKS.c.id, _TASKS.c.attempts, _TASKS.c.max_attempts, _TASKS.c.assigned_agent_id)
    .where(*_EXPIRED_WHERE)
    .order_by(_TASKS.c.lease_expires_at)
    .limit(EXPIRE_BATCH)
    .with_for_update(skip_locked=True)
)
_ANY_EXPIRED = select(_TASKS.c.id).where(*_EXPIRED_WHERE).limit(1)


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

    task: Row[Any]
    lease_token: str
    lease_expires_at: datetime


def _lease_length(lease_s: float) -> timedelta:
    if not 0 < lease_s <= MAX_LEASE_S:
        raise ValidationError(
            "invalid lease",
            details={"fields": {"lease_s": f"must be over 0 and at most {MAX_LEASE_S:g} seconds"}},
        )
    return timedelta(seconds=lease_s)


@functools.cache
def _ready(by_priority: bool, by_type: bool, locked: bool) -> Select[Any]:
    """Ready tasks for ``agent_id`` at ``now``, oldest first, at most ``limit``; of one
    ``priority`` and of ``types`` when asked."""
    stmt = (
        select(_TASKS.c.id, _TASKS.c.attempts, _TASKS.c.assigned_agent_id)
        .where(
            _TASKS.c.status == TaskStatus.PENDING,
            or_(_TASKS.c.not_before.is_(None), _TASKS.c.not_before <= bindparam("now")),
            or_(
                _TASKS.c.assigned_agent_id.is_(None),
                _TASKS.c.assigned_agent_id == bindparam("agent_id"),
            ),
        )
        .order_by(_TASKS.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if by_priority:
        stmt = stmt.where(_TASKS.c.priority == bindparam("priority"))
    if by_type:
        stmt = stmt.where(_TASKS.c.type.in_(bindparam("types", expanding=True)))
    return stmt.with_for_update(skip_locked=True) if locked else stmt


def expire_leases(source: Session | Connection, now: datetime | None = None) -> int:
    """Put tasks whose lease expired back to pending (failed, when their attempts are used
    up), as ``system:lease-expiry``; returns how many. Claims call it; so does ``db maintain``."""
    connection = core_connection(source)
    now = now or utcnow()
    expired = connection.execute(_EXPIRED, {"now": now}).all()
    with acting_as(EXPIRY_ACTOR):
        for row in expired:
            dead = row.attempts >= row.max_attempts
            status = TaskStatus.FAILED if dead else TaskStatus.PENDING
            error = f"lease expired (attempt {row.attempts} of {row.max_attempts})"
            connection.execute(
                _UPDATE,
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


def claim_tasks(
    source: Session | Connection,
    agent_id: int,
    *,
    types: Sequence[TaskType] = (),
    lease_s: float = 60.0,
    limit: int = 1,
    now: datetime | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` ready tasks for agent ``agent_id`` (of ``types``, when given;
    a task assigned to another agent is left to it), each with its own lease of ``lease_s``
    seconds. Returns them in claim order; empty when none is ready. An assigned task waits for
    its agent until its first attempt ends: a retry or an expired lease unassigns it.

    A claim, even one that finds nothing, is the agent's sign of life (``last_seen_at``).

    Raises ValidationError (bad lease, limit or types) and NotFoundError (no such agent).
    """
    lease = _lease_length(lease_s)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ValidationError(
            "invalid limit", details={"fields": {"limit": "must be an integer from 1 to 100"}}
        )
    kinds = [TaskType(t) for t in types]
    connection = core_connection(source)
    now = now or utcnow()
    if not fits(_AGENTS.c.id.type, agent_id) or (
        connection.execute(_AGENT_CLAIMS, {"agent_id": agent_id, "now": now}).first() is None
    ):
        raise NotFoundError(f"agent {agent_id} not found", details={"id": agent_id})
    expire_leases(connection, now)
    picked: list[Row[Any]] = []
    stmt = _ready(True, bool(kinds), True)
    params: dict[str, Any] = {"now": now, "agent_id": agent_id}
    if kinds:
        params["types"] = kinds
    for priority in PRIORITY_ORDER:
        params.update(priority=priority, limit=limit - len(picked))
        picked += connection.execute(stmt, params).all()
        if len(picked) == limit:
            break
    return [_take(connection, row, agent_id, now, now + lease) for row in picked]


def _take(
    connection: Connection, row: Row[Any], agent_id: int, now: datetime, expires: datetime
) -> Claim:
    token = secrets.token_urlsafe(24)
    task = connection.execute(
        _UPDATE_RETURNING,
        {
            "task_id": row.id,
            "status": TaskStatus.IN_PROGRESS,
            "assigned_agent_id": agent_id,
            "attempts": row.attempts + 1,
            "lease_token": token,
            "lease_expires_at": expires,
            "claimed_at": now,
            "not_before": None,
            "updated_at": now,
        },
    ).one()
    history.record(
        connection,
        "task",
        row.id,
        "claim",
        {
            "status": (TaskStatus.PENDING, TaskStatus.IN_PROGRESS),
            "assigned_agent_id": (row.assigned_agent_id, agent_id),
            "attempt": (row.attempts, row.attempts + 1),
            "lease_expires_at": (None, expires),
        },
    )
    return Claim(task, token, expires)


def _holder(connection: Connection, task_id: int, token: str, now: datetime) -> Row[Any]:
    """The task's row, locked, when ``token`` holds its live lease; else NotFoundError or
    ConflictError saying why not (nothing is changed either way)."""
    if not fits(_TASKS.c.id.type, task_id):
        raise NotFoundError(f"task {task_id} not found", details={"id": task_id})
    row = connection.execute(_HOLDER, {"task_id": task_id}).one_or_none()
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
    lease = _lease_length(lease_s)
    connection = core_connection(source)
    now = now or utcnow()
    row = _holder(connection, task_id, lease_token, now)
    expires = now + lease
    connection.execute(_UPDATE, {"task_id": task_id, "lease_expires_at": expires})
    if row.assigned_agent_id is not None:
        connection.execute(_AGENT_SEEN, {"agent_id": row.assigned_agent_id, "last_seen_at": now})
    return expires


def complete_task(
    source: Session | Connection,
    task_id: int,
    lease_token: str,
    *,
    result: Any = None,
    now: datetime | None = None,
) -> Row[Any]:
    """Complete task ``task_id`` held with ``lease_token`` (storing ``result``); returns the
    task. Raises NotFoundError, ConflictError (not the holder, or the lease expired)."""
    connection = core_connection(source)
    now = now or utcnow()
    row = _holder(connection, task_id, lease_token, now)
    task = connection.execute(
        _UPDATE_RETURNING,
        {
            "task_id": task_id,
            "status": TaskStatus.COMPLETED,
            "completed_at": now,
            "result": result,
            "lease_token": None,
            "lease_expires_at": None,
            "updated_at": now,
        },
    ).one()
    history.record(
        connection,
        "task",
        task_id,
        "complete",
        {
            "status": (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED),
            "attempt": (row.attempts, row.attempts),
            "result": (row.result, result),
        },
    )
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
) -> Row[Any]:
    """Fail the attempt of task ``task_id`` held with ``lease_token``: back to pending after
    a backoff while attempts remain (and ``retry``), else failed for good; ``error`` is kept as
    ``last_error``. Returns the task. Raises NotFoundError, ConflictError, ValidationError."""
    if not isinstance(error, str) or not error.strip():
        raise ValidationError(
            "invalid failure", details={"fields": {"error": "must be a non-empty message"}}
        )
    connection = core_connection(source)
    now = now or utcnow()
    row = _holder(connection, task_id, lease_token, now)
    again = retry and row.attempts < row.max_attempts
    status = TaskStatus.PENDING if again else TaskStatus.FAILED
    due = now + backoff.delay(row.attempts) if again else None
    task = connection.execute(
        _UPDATE_RETURNING,
        {
            "task_id": task_id,
            "status": status,
            "assigned_agent_id": None if again else row.assigned_agent_id,
            "not_before": due,
            "last_error": error,
            "lease_token": None,
            "lease_expires_at": None,
            "updated_at": now,
        },
    ).one()
    changes: dict[str, tuple[Any, Any]] = {
        "status": (TaskStatus.IN_PROGRESS, status),
        "attempt": (row.attempts, row.attempts),
        "last_error": (row.last_error, error),
    }
    if due is not None:
        changes["not_before"] = (None, due)
        changes["assigned_agent_id"] = (row.assigned_agent_id, None)
    history.record(connection, "task", task_id, "retry" if again else "fail", changes)
    return task


def list_expired_leases(connection: Connection, *, now: datetime | None = None) -> list[Row[Any]]:
    """Tasks still in progress whose lease has expired (stuck: their agent stopped), oldest
    expiry first, at most 1,000."""
    now = now or utcnow()
    stmt = (
        select(*_TASK_COLUMNS)
        .where(_TASKS.c.status == TaskStatus.IN_PROGRESS, _TASKS.c.lease_expires_at <= now)
        .order_by(_TASKS.c.lease_expires_at)
        .limit(1000)
    )
    return list(connection.execute(stmt).all())


def list_dead_tasks(connection: Connection) -> list[Row[Any]]:
    """Failed tasks that used up their attempts, newest first, at most 1,000."""
    stmt = (
        select(*_TASK_COLUMNS)
        .where(
            _TASKS.c.status == TaskStatus.FAILED,
            _TASKS.c.attempts >= _TASKS.c.max_attempts,
        )
        .order_by(_TASKS.c.id.desc())
        .limit(1000)
    )
    return list(connection.execute(stmt).all())


def has_ready_task(
    connection: Connection,
    agent_id: int,
    types: Sequence[TaskType] = (),
    now: datetime | None = None,
) -> bool:
    """Whether a claim by ``agent_id`` would find a task now (a read; waiters ask it first)."""
    now = now or utcnow()
    kinds = list(types)
    params: dict[str, Any] = {"now": now, "agent_id": agent_id, "limit": 1}
    if kinds:
        params["types"] = kinds
    return bool(connection.execute(_any_ready(bool(kinds)), params).scalar())


@functools.cache
def _any_ready(by_type: bool) -> Select[Any]:
    """One read: a ready task for the agent, or an expired lease (which a claim puts back)."""
    return select(or_(_ready(False, by_type, False).exists(), _ANY_EXPIRED.exists()))


__all__ = [
    "Backoff",
    "Claim",
    "claim_tasks",
    "complete_task",
    "expire_leases",
    "fail_task",
    "has_ready_task",
    "heartbeat",
    "list_dead_tasks",
    "list_expired_leases",
]
