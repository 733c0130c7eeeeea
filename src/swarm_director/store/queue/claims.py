"""Claims: the highest-priority, oldest ready task for an agent, taken under a fresh lease,
and the read that tells a waiting claimer whether a claim would find one."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, or_, select
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.enums import TaskPriority, TaskStatus, TaskType
from swarm_director.errors import NotFoundError, ValidationError
from swarm_director.store import history
from swarm_director.store._common import core_connection, fits
from swarm_director.store.prepared import Prepared
from swarm_director.store.queue.expiry import ANY_EXPIRED, expire_leases
from swarm_director.store.queue.leases import Claim, lease_length
from swarm_director.store.queue.statements import AGENT_CLAIMS, AGENTS, HISTORY, TAKE, TASKS

#: Claim order: the highest priority first, then the oldest (lowest id).
PRIORITY_ORDER = (TaskPriority.CRITICAL, TaskPriority.HIGH, TaskPriority.MEDIUM, TaskPriority.LOW)


def _ready() -> Select[Any]:
    """Ready tasks for ``agent_id`` at ``now``, oldest first, at most ``limit``."""
    return (
        select(TASKS.c.id, TASKS.c.attempts, TASKS.c.assigned_agent_id)
        .where(
            TASKS.c.status == TaskStatus.PENDING,
            or_(TASKS.c.not_before.is_(None), TASKS.c.not_before <= bindparam("now")),
            or_(
                TASKS.c.assigned_agent_id.is_(None),
                TASKS.c.assigned_agent_id == bindparam("agent_id"),
            ),
        )
        .order_by(TASKS.c.id)
        .limit(bindparam("limit", type_=Integer))
    )


@functools.cache
def _claimable(types: int) -> Prepared:
    """The ready tasks of one ``priority`` (and of ``types`` task types, ``type0`` ...,
    when over 0), locked for the claim: on PostgreSQL skipping those another claim holds."""
    stmt = _ready().where(TASKS.c.priority == bindparam("priority"))
    if types:
        stmt = stmt.where(TASKS.c.type.in_([bindparam(f"type{i}") for i in range(types)]))
    return Prepared(stmt.with_for_update(skip_locked=True))


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
    lease = lease_length(lease_s)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ValidationError(
            "invalid limit", details={"fields": {"limit": "must be an integer from 1 to 100"}}
        )
    kinds = list(dict.fromkeys(TaskType(t) for t in types))
    connection = core_connection(source)
    now = now or utcnow()
    if not fits(AGENTS.c.id.type, agent_id) or (
        AGENT_CLAIMS.first(connection, {"agent_id": agent_id, "now": now}) is None
    ):
        raise NotFoundError(f"agent {agent_id} not found", details={"id": agent_id})
    expire_leases(connection, now)
    picked: list[Any] = []
    ready = _claimable(len(kinds))
    params: dict[str, Any] = {"now": now, "agent_id": agent_id}
    params.update((f"type{i}", kind) for i, kind in enumerate(kinds))
    for priority in PRIORITY_ORDER:
        params.update(priority=priority, limit=limit - len(picked))
        picked += ready.rows(connection, params)
        if len(picked) == limit:
            break
    return [_take(connection, row, agent_id, now, now + lease) for row in picked]


def _take(
    connection: Connection, row: Any, agent_id: int, now: datetime, expires: datetime
) -> Claim:
    token = secrets.token_urlsafe(24)
    params = {
        "task_id": row.id,
        "assigned_agent_id": agent_id,
        "attempts": row.attempts + 1,
        "lease_token": token,
        "lease_expires_at": expires,
        "now": now,
    }
    task = TAKE.first(connection, params)
    changes = {
        "status": (TaskStatus.PENDING, TaskStatus.IN_PROGRESS),
        "assigned_agent_id": (row.assigned_agent_id, agent_id),
        "attempt": (row.attempts, row.attempts + 1),
        "lease_expires_at": (None, expires),
    }
    HISTORY.run(connection, history.entry_values("task", row.id, "claim", changes))
    return Claim(task, token, expires)


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
    ready = _ready()
    if by_type:
        ready = ready.where(TASKS.c.type.in_(bindparam("types", expanding=True)))
    return select(or_(ready.exists(), ANY_EXPIRED.exists()))
