"""Log operations: lists across tasks and per task, single and batch ingest (see
:mod:`.operations`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal, Unpack

from swarm_director.client.calls import (
    JSON_HEADERS,
    Body,
    Call,
    Params,
    filter_query,
    json_body,
    query,
)
from swarm_director.client.operations import post
from swarm_director.schemas import LogBatchOut, LogOut, LogPage
from swarm_director.schemas.filters import (
    LogFilter,
    LogFilterArgs,
    TaskLogFilter,
    TaskLogFilterArgs,
)

Order = Literal["asc", "desc"]


def list_task_logs(
    task_id: int,
    *,
    order: Order | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    **filters: Unpack[TaskLogFilterArgs],
) -> Call[LogPage]:
    """A page of one task's logs (newest first unless ``order="asc"``) filtered by the fields
    of :class:`~swarm_director.schemas.filters.TaskLogFilter`; NotFoundError for a missing
    task. ``level`` is a minimum: ``warning`` gives warnings and errors."""
    params = filter_query(TaskLogFilter, filters)
    params.update(query(order=order, limit=limit, cursor=cursor))
    return Call("GET", f"/api/tasks/{task_id}/logs", LogPage, params=params)


def list_logs(
    *,
    order: Order | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    **filters: Unpack[LogFilterArgs],
) -> Call[LogPage]:
    """A page of logs across tasks (or of ``task_id``), with the same filters."""
    params = filter_query(LogFilter, filters)
    params.update(query(order=order, limit=limit, cursor=cursor))
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


def stream_request(task_id: int | None, filters: TaskLogFilterArgs) -> tuple[str, Params]:
    """The path and query of the Server-Sent Events stream of one task's logs, or of all."""
    path = "/api/logs/stream" if task_id is None else f"/api/tasks/{task_id}/logs/stream"
    return path, filter_query(TaskLogFilter, filters)
