"""Live tail: ``GET /api/tasks/{id}/logs/stream`` and ``GET /api/logs/stream`` as Server-Sent
Events.

Each stored record that matches the filters is one event: ``id:`` its keyset cursor (the row
id, in insert order), ``data:`` the record as the list endpoints return it. The first event,
``event: ready``, carries the starting cursor, so a client that reconnects before any record
arrived still resumes where it was. Resume with the ``Last-Event-ID`` header (what browsers
send) or ``?cursor=``. A comment line is sent after ``SWARM_STREAM_HEARTBEAT_S`` of silence.

A stream holds a server thread, not a database connection: every ``SWARM_STREAM_POLL_S`` it
borrows a pooled connection for one or two short queries (:mod:`swarm_director.store.log_stream`).
At most ``SWARM_STREAM_MAX_CLIENTS`` streams per process (then 503 with Retry-After), each at
most ``SWARM_STREAM_MAX_S`` long; on shutdown (:func:`begin_shutdown`) every stream ends within
one poll, so the server stops cleanly and clients reconnect elsewhere.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

from flask import Flask, Response, current_app
from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, Field

from swarm_director.api.common import TaskPath, blueprint
from swarm_director.api.context import database, state
from swarm_director.api.errors import ErrorResponse, error_response
from swarm_director.api.logs import LogFilterFields
from swarm_director.config import Settings
from swarm_director.db import Database
from swarm_director.schemas import LogOut
from swarm_director.schemas.common import MAX_BIG_ID, PositiveId
from swarm_director.store import tasks
from swarm_director.store.log_stream import BATCH, LogFollower

bp = blueprint("streams", "Live tail of agent logs (Server-Sent Events).")

_EXTENSION = "swarm_director.streams"
_log = logging.getLogger(__name__)
#: Set when the server begins to stop: open streams end within one poll.
SHUTDOWN = threading.Event()

StreamCursor = Annotated[
    int, Field(ge=0, le=MAX_BIG_ID, description="The `id` of the last event received.")
]


class StreamQuery(LogFilterFields):
    cursor: StreamCursor | None = None


class AllStreamQuery(StreamQuery):
    task_id: PositiveId | None = None


class StreamHeaders(BaseModel):
    last_event_id: StreamCursor | None = Field(
        default=None,
        alias="Last-Event-ID",
        description="Resume after this event (wins over `?cursor=`).",
    )


def begin_shutdown() -> None:
    """End every open stream of this process (called by the server on SIGTERM)."""
    SHUTDOWN.set()


_STREAM_RESPONSES: ResponseDict = {
    200: {
        "description": "`text/event-stream` of log records.",
        "content": {"text/event-stream": {}},
    },
    503: ErrorResponse,
}


@bp.get("/tasks/<int:task_id>/logs/stream", responses=_STREAM_RESPONSES)
def stream_task_logs(path: TaskPath, query: StreamQuery, header: StreamHeaders) -> Response:
    """Follow a task's logs as they are stored (Server-Sent Events; see the tag)."""
    return _open(path.task_id, query, header)


@bp.get("/logs/stream", responses=_STREAM_RESPONSES)
def stream_logs(query: AllStreamQuery, header: StreamHeaders) -> Response:
    """Follow the logs of every task (or of `task_id`) as they are stored."""
    return _open(query.task_id, query, header)


def _open(task_id: int | None, query: StreamQuery, header: StreamHeaders) -> Response:
    settings = state().settings
    db = database()
    after = header.last_event_id if header.last_event_id is not None else query.cursor
    follower = LogFollower(after_id=after, filters={"task_id": task_id, **query.store_filters()})
    with db.statement_reads() as connection:
        if task_id is not None:
            tasks.read_task(connection, task_id)  # 404 for a missing task
        follower.start(connection)
    slots: threading.BoundedSemaphore = current_app.extensions[_EXTENSION]
    if SHUTDOWN.is_set() or not slots.acquire(blocking=False):
        response = error_response(
            503,
            "unavailable",
            "Too many open log streams on this server; try again shortly.",
            {"max_streams": settings.stream_max_clients},
        )
        response.headers["Retry-After"] = "2"
        return response
    stream = _EventStream(db, follower, settings, slots)
    return Response(
        stream,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _EventStream:
    """The response body: an iterable whose ``close()`` frees the stream's slot, whether or
    not iteration ever started (a generator's ``finally`` would not run then)."""

    def __init__(
        self,
        db: Database,
        follower: LogFollower,
        settings: Settings,
        slots: threading.BoundedSemaphore,
    ) -> None:
        self.db = db
        self.follower = follower
        self.settings = settings
        self._slots: threading.BoundedSemaphore | None = slots

    def __iter__(self) -> Iterator[bytes]:
        settings, follower = self.settings, self.follower
        ready = json.dumps({"cursor": str(follower.cursor)})
        yield f"retry: 1000\nid: {follower.cursor}\nevent: ready\ndata: {ready}\n\n".encode()
        started = last_write = time.monotonic()
        while not SHUTDOWN.is_set() and time.monotonic() - started < settings.stream_max_s:
            try:
                with self.db.statement_reads() as connection:
                    rows = follower.poll(connection)
            except Exception:  # the database went away: end; the client reconnects
                _log.warning("log stream: poll failed", exc_info=True)
                return
            now = time.monotonic()
            if rows:
                yield "".join(_event(row) for row in rows).encode()
                last_write = now
                if len(rows) == BATCH:
                    continue  # more are waiting
            elif now - last_write >= settings.stream_heartbeat_s:
                yield b": keep-alive\n\n"
                last_write = now
            SHUTDOWN.wait(settings.stream_poll_s)

    def close(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None


def _event(row: Any) -> str:
    data = LogOut.model_validate(row, from_attributes=True).model_dump_json(by_alias=True)
    return f"id: {row.id}\ndata: {data}\n\n"


def init_app(app: Flask) -> None:
    """Give ``app`` its per-process budget of open streams."""
    app.extensions[_EXTENSION] = threading.BoundedSemaphore(state(app).settings.stream_max_clients)
