"""Agent logs: ``/api/tasks/{task_id}/logs`` (read and ingest) and ``/api/logs`` across tasks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Response
from pydantic import BaseModel, Field, RootModel, SkipValidation

from swarm_director.api.common import PageQuery, TaskPath, blueprint, json_response
from swarm_director.api.row_pages import RowPageWriter
from swarm_director.errors import ValidationError
from swarm_director.schemas import LogBatchOut, LogCreate, LogOut, LogPage
from swarm_director.schemas.filters import LogFilter, TaskLogFilter
from swarm_director.store import logs, tasks
from swarm_director.web.context import connection, session

bp = blueprint("logs", "Append-only agent logs: batch ingest and filtered, paginated reads.")

#: Most records one POST may carry.
MAX_BATCH = 10_000
#: Log pages, the hottest read: rows written as LogPage's JSON without a model per row.
_PAGES = RowPageWriter(LogOut)


class LogIngest(
    RootModel[
        # The store validates the records (naming the bad row); the annotation documents them.
        SkipValidation[LogCreate | Annotated[list[LogCreate], Field(max_length=MAX_BATCH)]]
    ]
):
    """One log record, or a list of up to 10,000 for batch ingest (stored all or nothing)."""


class LogIngestOut(RootModel[LogOut | LogBatchOut]):
    """The stored record for a single object; the count for a list."""


class IngestHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        description="Makes a batch ingest safe to retry: a repeat with the same key and body "
        "stores nothing and gets the first answer; the same key with another body is a 409.",
    )


class TaskLogQuery(TaskLogFilter, PageQuery):
    order: Literal["asc", "desc"] = Field(
        default="desc", description="By (timestamp, id); `desc` is newest first."
    )


class LogQuery(LogFilter, TaskLogQuery):
    """The query of logs across tasks: a task's, and ``task_id``."""


def _list(log_filter: LogFilter, query: TaskLogQuery) -> Response:
    page = logs.list_logs(
        connection(), log_filter, order=query.order, limit=query.limit, cursor=query.cursor
    )
    if not page.items and log_filter.task_id is not None:
        # A missing task is 404, not an empty page; checked only when the page is empty
        # because rows of a task prove it exists (this is the hot path of agents' reads).
        tasks.read_task(connection(), log_filter.task_id)
    return _PAGES.response(page.items, page.next_cursor)


@bp.get("/tasks/<int:task_id>/logs", responses={200: LogPage})
def list_task_logs(path: TaskPath, query: TaskLogQuery) -> Response:
    """List a task's logs, newest first by default, with level/agent/session/time filters and
    the search `q` over the message."""
    return _list(LogFilter.of(query, task_id=path.task_id), query)


@bp.post("/tasks/<int:task_id>/logs", responses={201: LogIngestOut})
def add_task_logs(path: TaskPath, body: LogIngest, header: IngestHeaders) -> Response:
    """Append one log record (answered with the record) or a list of up to 10,000 (answered
    with the count). A list is stored all or nothing; a bad record is named by its index,
    e.g. `[17].log_level`. With an `Idempotency-Key` header a retried batch is stored once."""
    data: Any = body.root
    key = header.idempotency_key
    if isinstance(data, list):
        if len(data) > MAX_BATCH:
            message = f"a batch holds at most {MAX_BATCH} records, not {len(data)}"
            raise ValidationError(message, details={"fields": {"body": message}})
        inserted = logs.add_logs(session(), path.task_id, data, idempotency_key=key)
        return json_response(LogBatchOut(task_id=path.task_id, inserted=inserted), 201)
    if key is not None:
        message = "Idempotency-Key applies to batch ingest: send the record in a list"
        raise ValidationError(message, details={"fields": {"Idempotency-Key": message}})
    if not isinstance(data, dict):
        message = "expected a log record object or a list of them"
        raise ValidationError(message, details={"fields": {"body": message}})
    record = logs.add_log(session(), path.task_id, data)
    return json_response(LogOut.model_validate(record), 201)


@bp.get("/logs", responses={200: LogPage})
def list_logs(query: LogQuery) -> Response:
    """List logs across tasks (optionally of one task) with the same filters."""
    return _list(query, query)
