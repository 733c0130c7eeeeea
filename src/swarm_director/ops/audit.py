"""The audit trail: one ``maintenance_events`` row per administrative action.

Usage::

    with audit.record(engine, MaintenanceOperation.BACKUP) as details:
        details["path"] = str(path)
        ...

The row is written when the block ends, in its own short transaction, so that a failed action
(whose own transaction was rolled back) still leaves a ``failed`` row with the reason, and so
that a long action holds no lock on ``maintenance_events`` while it runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.errors import SwarmError
from swarm_director.models import MaintenanceEvent, MaintenanceOperation, MaintenanceStatus
from swarm_director.ops.dbinfo import reader, table_of
from swarm_director.redact import first_line

log = logging.getLogger(__name__)

_TABLE = table_of(MaintenanceEvent)


def write_event(
    engine: Engine,
    operation: MaintenanceOperation,
    status: MaintenanceStatus,
    started_at: datetime,
    details: dict[str, Any],
    finished_at: datetime | None = None,
) -> bool:
    """Insert one event in its own transaction; True if it was written.

    A database without the ``maintenance_events`` table (a schema older than the audit
    revision, or a file that is not ours) cannot hold the trail: the event is logged as a
    warning instead, and the caller's outcome is never masked by the audit failing.
    """
    now = utcnow()
    row = {
        "operation": operation.value,
        "status": status.value,
        "started_at": started_at,
        "finished_at": finished_at or now,
        "details": _jsonable(details),
        "created_at": now,
        "updated_at": now,
    }
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(_TABLE).values(**row))
    except sa.exc.SQLAlchemyError as error:
        first = first_line(error)
        log.warning("audit event %s/%s not recorded: %s", operation, status, first)
        return False
    return True


@contextmanager
def record(engine: Engine, operation: MaintenanceOperation) -> Iterator[dict[str, Any]]:
    """Record ``operation`` when the block ends: ``ok``, or ``failed`` with the error.

    Yields a dict the block fills with details (paths, counts, sizes). An exception leaving
    the block is recorded (its message under ``error``) and re-raised unchanged.
    """
    started = utcnow()
    details: dict[str, Any] = {}
    try:
        yield details
    except BaseException as error:
        details["error"] = _reason(error)
        write_event(engine, operation, MaintenanceStatus.FAILED, started, details)
        raise
    write_event(engine, operation, MaintenanceStatus.OK, started, details)


def last_successful(engine: Engine, operation: MaintenanceOperation) -> datetime | None:
    """When the last ``ok`` event of ``operation`` started, or None (also without the table)."""
    query = sa.select(sa.func.max(_TABLE.c.started_at)).where(
        _TABLE.c.operation == operation.value, _TABLE.c.status == MaintenanceStatus.OK.value
    )
    try:
        with reader(engine).connect() as conn:
            value = conn.execute(query).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    return value if isinstance(value, datetime) else None


def last_successful_each(
    conn: Connection, operations: Sequence[MaintenanceOperation]
) -> dict[MaintenanceOperation, datetime | None]:
    """:func:`last_successful` of each of ``operations`` in one statement on ``conn`` (one
    index seek each); the table must exist."""
    values = conn.execute(_last_ok_query(tuple(operations))).one()
    return {
        op: value if isinstance(value, datetime) else None
        for op, value in zip(operations, values, strict=True)
    }


@functools.cache
def _last_ok_query(operations: tuple[MaintenanceOperation, ...]) -> sa.Select[Any]:
    ok = MaintenanceStatus.OK.value
    return sa.select(
        *(
            sa.select(sa.func.max(_TABLE.c.started_at))
            .where(_TABLE.c.operation == op.value, _TABLE.c.status == ok)
            .scalar_subquery()
            for op in operations
        )
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, SwarmError):
        return error.message
    return f"{error.__class__.__name__}: {first_line(error, fallback='')}".rstrip(": ")


def _jsonable(value: Any) -> Any:
    """Details as plain JSON types (paths and datetimes become strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


#: Most events one :func:`list_events` call returns.
MAX_EVENTS = 500


def list_events(
    engine: Engine,
    *,
    operation: MaintenanceOperation | None = None,
    status: MaintenanceStatus | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The newest events first (``id, operation, status, started_at, finished_at,
    details``), optionally of one operation and/or status and older than ``before_id``;
    at most :data:`MAX_EVENTS`. Empty without the table."""
    table = _TABLE
    query = sa.select(table).order_by(table.c.id.desc()).limit(max(1, min(limit, MAX_EVENTS)))
    if operation is not None:
        query = query.where(table.c.operation == MaintenanceOperation(operation).value)
    if status is not None:
        query = query.where(table.c.status == MaintenanceStatus(status).value)
    if before_id is not None:
        query = query.where(table.c.id < before_id)
    return _events(engine, query)


def latest_events(engine: Engine) -> dict[str, dict[str, Any]]:
    """The newest event of each operation, by operation name (one statement)."""
    table = _TABLE
    newest = sa.select(sa.func.max(table.c.id)).group_by(table.c.operation)
    events = _events(engine, sa.select(table).where(table.c.id.in_(newest.scalar_subquery())))
    return {event["operation"]: event for event in events}


def verify_results(engine: Engine, *, limit: int = MAX_EVENTS) -> dict[str, dict[str, Any]]:
    """The newest ``verify`` event of each backup file among the last ``limit`` verifies,
    keyed by the file's path as it was given to ``db verify``."""
    out: dict[str, dict[str, Any]] = {}
    for event in list_events(engine, operation=MaintenanceOperation.VERIFY, limit=limit):
        file = event["details"].get("file") if isinstance(event["details"], dict) else None
        if isinstance(file, str) and file not in out:
            out[file] = event
    return out


def _events(engine: Engine, query: sa.Select[Any]) -> list[dict[str, Any]]:
    try:
        with reader(engine).connect() as conn:
            rows = conn.execute(query).mappings().all()
    except sa.exc.SQLAlchemyError:  # no table (a schema before the audit revision)
        return []
    out = []
    for row in rows:
        event = dict(row)
        for key in ("operation", "status"):
            value = event[key]
            event[key] = getattr(value, "value", value)
        out.append(event)
    return out
