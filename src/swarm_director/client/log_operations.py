"""Log operations: lists across tasks and per task, single and batch ingest (see
:mod:`.operations`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from swarm_director.client.calls import JSON_HEADERS, Body, Call, json_body, query
from swarm_director.client.operations import post
from swarm_director.enums import LogLevel
from swarm_director.schemas import LogBatchOut, LogOut, LogPage

Order = Literal["asc", "desc"]


def log_filters(
    *,
    level: LogLevel | str | None = None,
    agent_type: str | None = None,
    agent_id: int | None = None,
    session_id: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    q: str | None = None,
) -> dict[str, str]:
    """The query parameters of the log filters (shared by lists and streams)."""
    return query(
        level=level,
        agent_type=agent_type,
        agent_id=agent_id,
        session_id=session_id,
        since=since,
        until=until,
        q=q,
    )


def list_task_logs(
    task_id: int,
    *,
    level: LogLevel | str | None = None,
    agent_type: str | None = None,
    agent_id: int | None = None,
    session_id: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    q: str | None = None,
    order: Order | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[LogPage]:
    """A page of one task's logs (newest first unless ``order="asc"``); NotFoundError for a
    missing task. ``level`` is a minimum: ``warning`` gives warnings and errors."""
    params = log_filters(
        level=level,
        agent_type=agent_type,
        agent_id=agent_id,
        session_id=session_id,
        since=since,
        until=until,
        q=q,
    )
    params.update(query(order=order, limit=limit, cursor=cursor))
    return Call("GET", f"/api/tasks/{task_id}/logs", LogPage, params=params)


def list_logs(
    *,
    task_id: int | None = None,
    level: LogLevel | str | None = None,
    agent_type: str | None = None,
    agent_id: int | None = None,
    session_id: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    q: str | None = None,
    order: Order | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[LogPage]:
    """A page of logs across tasks (or of ``task_id``), with the same filters."""
    params = log_filters(
        level=level,
        agent_type=agent_type,
        agent_id=agent_id,
        session_id=session_id,
        since=since,
        until=until,
        q=q,
    )
    params.update(query(task_id=task_id, order=order, limit=limit, cursor=cursor))
    return Call("GET", "/api/logs", LogPage, params=params)


def add_log(task_id: int, body: Body) -> Call[LogOut]:
    """Append one log record to a task; answers with the stored record. Not retried."""
    return post(f"/api/tasks/{task_id}/logs", LogOut, body)


def add_logs(
    task_id: int, records: Sequence[Body], *, idempotency_key: str | None = None
) -> Call[LogBatchOut]:
    """Append a batch of log records (all or nothing). Always sent with an ``Idempotency-Key``
    (a fresh one unless given), so the transport may retry it and it is stored once."""
    headers = {**JSON_HEADERS, "Idempotency-Key": idempotency_key or uuid.uuid4().hex}
    return Call(
        "POST",
        f"/api/tasks/{task_id}/logs",
        LogBatchOut,
        content=json_body(records),
        headers=headers,
        retry=True,
    )


def stream_path(task_id: int | None) -> str:
    """The Server-Sent Events stream of one task's logs, or of all logs."""
    return "/api/logs/stream" if task_id is None else f"/api/tasks/{task_id}/logs/stream"
