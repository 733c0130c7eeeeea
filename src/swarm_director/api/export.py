"""``GET /api/export/logs``: every log record matching the log list's filters, streamed as JSON
lines or CSV (:mod:`swarm_director.store.export` writes the text).

The body is produced while it is sent: constant memory whatever the size, one statement (one
snapshot of the database) on a connection of its own, held until the body ends. Rows come
oldest first by (timestamp, id). A download that breaks is resumed by asking again with the
same filters and ``cursor=`` the id of the last complete row received.

Each export holds a server thread and a database connection, so a process streams at most
``SWARM_EXPORT_MAX_CLIENTS`` at once (then 503 with Retry-After) and
``SWARM_EXPORT_MAX_PER_KEY`` per API key, or per address for console sessions (then 429).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing
from typing import Literal

from flask import Flask, Response, current_app, g
from flask_openapi3.types import ResponseDict
from pydantic import Field

from swarm_director.api.common import QueryModel, blueprint
from swarm_director.api.slots import SlotKind, Slots, owner_of
from swarm_director.db.reads import ReadPlace
from swarm_director.schemas.common import PositiveBigId
from swarm_director.schemas.export import ExportFormat, ExportKind
from swarm_director.schemas.filters import LogFilter
from swarm_director.store import export, tasks
from swarm_director.web.context import connection, read_place, state
from swarm_director.web.errors import ErrorResponse

bp = blueprint("export", "Bulk export of agent logs as JSON lines or CSV, streamed.")

_EXTENSION = "swarm_director.exports"
_MEDIA_TYPES = {ExportFormat.JSONL: "application/x-ndjson", ExportFormat.CSV: "text/csv"}
#: How a refused export reads (Retry-After: the process is full / the caller holds its limit).
_KIND = SlotKind("export", "exports running", "wait for one to end", 5, 10)


class LogExportQuery(LogFilter, QueryModel):
    """The filters of the log list, a format and where to resume."""

    format: Literal["jsonl", "csv"] = Field(
        default="jsonl",
        description="`jsonl`: one JSON object a line, the fields of a log list item; "
        "`csv`: a header line, then one row a record (PostgreSQL's CSV rules).",
    )
    cursor: PositiveBigId | None = Field(
        default=None,
        description="The `id` of the last complete row received: the export continues after "
        "it (same filters).",
    )


_RESPONSES: ResponseDict = {
    200: {
        "description": "The records, oldest first by (timestamp, id), streamed.",
        "content": {media: {} for media in _MEDIA_TYPES.values()},
    },
    429: ErrorResponse,
    503: ErrorResponse,
}


@bp.get("/export/logs", responses=_RESPONSES)
def export_logs(query: LogExportQuery) -> Response:
    """Every log record matching the filters (those of `GET /api/logs`), streamed as JSON
    lines or CSV; resume a broken download with `cursor`. See the tag for the limits."""
    fmt = ExportFormat(query.format)
    log_filter = LogFilter.of(query)
    prepared = export.prepare_export(connection(), ExportKind.LOGS, log_filter, cursor=query.cursor)
    if log_filter.task_id is not None:
        tasks.read_task(connection(), log_filter.task_id)  # 404 for a missing task
    slots: Slots = current_app.extensions[_EXTENSION]
    owner, who = owner_of(g.get("principal"))
    full = slots.take(owner)
    if full is not None:
        return slots.refusal(full, who)
    body = _Body(read_place(), prepared, fmt, slots, owner)  # a replica's, when one serves
    extension = fmt.value
    return Response(
        body,
        mimetype=_MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="logs.{extension}"',
            "X-Accel-Buffering": "no",
        },
    )


class _Body:
    """The response body: reads on its own connection while it is sent (on the request's read
    place: a replica when one serves the request's reads); ``close()`` gives
    the slot back whether or not iteration ever started (a generator's ``finally`` would not
    run then)."""

    def __init__(
        self,
        place: ReadPlace,
        prepared: export.Export,
        fmt: ExportFormat,
        slots: Slots,
        owner: str,
    ) -> None:
        self.place = place
        self.prepared = prepared
        self.fmt = fmt
        self._slots: Slots | None = slots
        self._owner = owner

        self._reading: Generator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._reading = self._read()
        return self._reading

    def _read(self) -> Generator[bytes]:
        # A read transaction: PostgreSQL's COPY runs in it, SQLite reads one snapshot.
        try:
            with self.place.session() as session:
                chunks = export.text_chunks(session.connection(), self.prepared, self.fmt)
                with closing(chunks):
                    for chunk in chunks:
                        yield chunk.data
        finally:
            self._give_back()  # the body is sent: the slot is free before the server closes

    def close(self) -> None:
        if self._reading is not None:  # a client gone mid-body: the statement ends now
            self._reading.close()
            self._reading = None
        self._give_back()

    def _give_back(self) -> None:
        if self._slots is not None:
            self._slots.give_back(self._owner)
            self._slots = None


def init_app(app: Flask) -> None:
    """Give ``app`` its per-process budget of running exports (in all and per key)."""
    settings = state(app).settings
    app.extensions[_EXTENSION] = Slots(
        settings.export_max_clients, settings.export_max_per_key, _KIND
    )
