"""Live tail: ``GET /api/tasks/{id}/logs/stream`` and ``GET /api/logs/stream`` as Server-Sent
Events.

Each stored record that matches the filters is one event: ``id:`` its keyset cursor (the row
id, in insert order), ``data:`` the record as the list endpoints return it. The first event,
``event: ready``, carries the starting cursor, so a client that reconnects before any record
arrived still resumes where it was. Resume with the ``Last-Event-ID`` header (what browsers
send) or ``?cursor=``. A comment line is sent after ``SWARM_STREAM_HEARTBEAT_S`` of silence.

A stream holds a server thread, not a database connection: every ``SWARM_STREAM_POLL_S`` it
borrows a pooled connection for one or two short queries (:mod:`swarm_director.store.log_stream`).
At most ``SWARM_STREAM_MAX_CLIENTS`` streams per process (then 503 with Retry-After) and
``SWARM_STREAM_MAX_PER_KEY`` per API key, or per address for console sessions (then 429), so
one caller cannot take every slot; each at most ``SWARM_STREAM_MAX_S`` long. A slot is freed
within one poll of its client going away: the stream peeks at the client's socket every poll
rather than waiting for a heartbeat to fail to send.

A stream re-checks its key (one indexed lookup) before it sends rows and every
``SWARM_STREAM_KEY_CHECK_S`` while idle: once the key is revoked or expired it sends
``event: end`` with the reason and ends, so nothing stored after the revocation reaches it.
The check follows the read of the rows it guards: a key still live then was live when they
were read. On shutdown (:func:`begin_shutdown`) every stream ends within one poll, so the
server stops cleanly and clients reconnect elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from flask import Flask, Response, current_app, g, request
from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection

from swarm_director.api.common import QueryModel, TaskPath, blueprint
from swarm_director.api.row_pages import RowPageWriter
from swarm_director.api.slots import SlotKind, Slots, owner_of
from swarm_director.config import Settings
from swarm_director.db.reads import ReadPlace
from swarm_director.schemas import LogOut
from swarm_director.schemas.common import MAX_BIG_ID
from swarm_director.schemas.filters import LogFilter, TaskLogFilter
from swarm_director.store import keys, tasks
from swarm_director.store.log_stream import BATCH, LogFollower
from swarm_director.web.auth import Principal
from swarm_director.web.context import read_place, state
from swarm_director.web.errors import ErrorResponse

bp = blueprint("streams", "Live tail of agent logs (Server-Sent Events).")

_EXTENSION = "swarm_director.streams"
#: The events' data: each row written as LogOut's JSON without a model per row.
_ROWS = RowPageWriter(LogOut)
_log = logging.getLogger(__name__)
#: Set when the server begins to stop: open streams end within one poll.
SHUTDOWN = threading.Event()

_DIGITS = re.compile(r"[0-9]{1,19}")


def _digits_only(value: object) -> object:
    # pydantic's lax mode reads "60.0", " 60", "+60" and "6_0" as 60; an event id is the
    # digits the server sent, and anything else is a client bug to report, not to guess at.
    if isinstance(value, bool) or (isinstance(value, str) and not _DIGITS.fullmatch(value)):
        raise PydanticCustomError("digits", "must be an event id: digits only")
    return value


# The bounds come before the validator so they stay in the OpenAPI document (see PositiveId).
StreamCursor = Annotated[
    int,
    Field(ge=0, le=MAX_BIG_ID, description="The `id` of the last event received."),
    BeforeValidator(_digits_only),
]


class StreamQuery(TaskLogFilter, QueryModel):
    cursor: StreamCursor | None = None


class AllStreamQuery(LogFilter, StreamQuery):
    """The query of the stream across tasks: a task's, and ``task_id``."""


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
    429: ErrorResponse,
    503: ErrorResponse,
}
#: How a refused stream reads; Retry-After: the process is full (streams end often) / the
#: caller holds its limit (a slot frees only when one of its own streams ends).
_KIND = SlotKind("stream", "open log streams", "close one first", 2, 5)


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
    place = read_place()
    after = header.last_event_id if header.last_event_id is not None else query.cursor
    follower = LogFollower(after_id=after, log_filter=LogFilter.of(query, task_id=task_id))
    with place.statements() as connection:
        if task_id is not None:
            tasks.read_task(connection, task_id)  # 404 for a missing task
        follower.start(connection)
    slots: Slots = current_app.extensions[_EXTENSION]
    principal: Principal | None = g.get("principal")
    owner, who = owner_of(principal)
    full = "process" if SHUTDOWN.is_set() else slots.take(owner)
    if full is not None:
        return slots.refusal(full, who)
    stream = _EventStream(
        place,
        follower,
        settings,
        slots=slots,
        owner=owner,
        key_id=principal.key_id if principal is not None else None,
        client=request.environ.get("gunicorn.socket"),
    )
    return Response(
        stream,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _client_gone(sock: socket.socket | None) -> bool:
    """True when the client closed its connection (or it broke). Costs one ``poll(0)``; a
    peek reads nothing, so a request the client pipelined stays where it is."""
    if sock is None:  # not under gunicorn: a failed write ends the stream instead
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ValueError:  # a TLS socket takes no flags: leave it to the next write
        return False
    except OSError:
        return True


class _EventStream:
    """The response body: an iterable whose ``close()`` frees the stream's slot, whether or
    not iteration ever started (a generator's ``finally`` would not run then)."""

    def __init__(
        self,
        place: ReadPlace,
        follower: LogFollower,
        settings: Settings,
        *,
        slots: Slots,
        owner: str,
        key_id: str | None,
        client: socket.socket | None,
    ) -> None:
        self.place = place
        self.follower = follower
        self.settings = settings
        self.key_id = key_id
        self.client = client
        self._slots: Slots | None = slots
        self._owner = owner
        self._key_checked = time.monotonic()

    def _key_refusal(self, connection: Connection, *, now: bool) -> str | None:
        """Why the stream's key may no longer read (see :func:`keys.key_refusal`); asked
        when ``now``, else at most every ``SWARM_STREAM_KEY_CHECK_S``."""
        if self.key_id is None:  # the bootstrap token, or no auth: nothing to revoke
            return None
        clock = time.monotonic()
        if not now and clock - self._key_checked < self.settings.stream_key_check_s:
            return None
        self._key_checked = clock
        return keys.key_refusal(connection, self.key_id)

    def __iter__(self) -> Iterator[bytes]:
        settings, follower = self.settings, self.follower
        ready = json.dumps({"cursor": str(follower.cursor)})
        yield f"retry: 1000\nid: {follower.cursor}\nevent: ready\ndata: {ready}\n\n".encode()
        started = last_write = time.monotonic()
        while not SHUTDOWN.is_set() and time.monotonic() - started < settings.stream_max_s:
            if _client_gone(self.client):
                return
            if not self.place.usable():  # its replica fell behind: the client reconnects
                return
            try:
                with self.place.statements() as connection:
                    rows = follower.poll(connection)
                    refused = self._key_refusal(connection, now=bool(rows))
            except Exception:  # the database went away: end; the client reconnects
                _log.warning("log stream: poll failed", exc_info=True)
                return
            if refused is not None:
                yield f"event: end\ndata: {json.dumps({'reason': refused})}\n\n".encode()
                return
            now = time.monotonic()
            if rows:
                yield _events(rows).encode()
                last_write = now
                if len(rows) == BATCH:
                    continue  # more are waiting
            elif now - last_write >= settings.stream_heartbeat_s:
                yield b": keep-alive\n\n"
                last_write = now
            SHUTDOWN.wait(settings.stream_poll_s)

    def close(self) -> None:
        if self._slots is not None:
            self._slots.give_back(self._owner)
            self._slots = None


def _events(rows: Sequence[Any]) -> str:
    """The rows as Server-Sent Events, each with its id and its LogOut JSON."""
    return "".join(
        f"id: {row.id}\ndata: {data}\n\n"
        for row, data in zip(rows, _ROWS.each_json(rows), strict=True)
    )


def init_app(app: Flask) -> None:
    """Give ``app`` its per-process budget of open streams (in all and per key)."""
    settings = state(app).settings
    app.extensions[_EXTENSION] = Slots(
        settings.stream_max_clients, settings.stream_max_per_key, _KIND
    )
