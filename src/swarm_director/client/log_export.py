"""``export_logs`` of both clients: ``GET /api/export/logs`` streamed to a file.

The body passes through in the chunks it arrives in; only complete rows are written (a row cut
by a lost connection is held back), so the file never ends inside a row. A connection lost
mid-body is resumed with ``cursor=`` the id of the last complete row, as docs/export.md
describes for curl, under the client's :class:`~.RetryPolicy` (a resumed request that brings
rows starts the count of attempts again). Given a path, the rows go to a hidden ``.part-`` file
beside it, renamed into place when the last row is in and removed when the export fails: a
file under the asked-for name is always a whole export. Like the server's exports, it is
created owner-only (``0600``): it holds what the database holds.

The decisions live in :class:`LogExport`; the two clients only move bytes (blocking or async).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import httpx

from swarm_director.client.calls import Call, filter_query, query
from swarm_director.client.errors import error_for, unreachable
from swarm_director.client.retry import RETRY_STATUSES, RetryPolicy
from swarm_director.schemas.filters import LogFilter

ExportFormat = Literal["jsonl", "csv"]
#: A path to write (through a ``.part-`` file), or a binary file open for writing.
Target = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    rows: int
    """Rows written (a CSV header is not a row)."""
    bytes: int
    """Bytes written, the CSV header included."""
    cursor: int | None
    """The id of the last row written: pass it as ``cursor=`` to export only what came
    after (None when no row was written: pass the same cursor as before)."""
    path: Path | None
    """The file written, when a path was given."""


class LogExport:
    """One export's state across its requests: the query, the rows written, where to resume.

    :meth:`feed` takes the body's chunks and gives back the bytes of the complete rows in
    them; :meth:`lost` and :meth:`refused` say how long to wait before asking again (resuming
    after the last complete row) or raise the client's error.
    """

    def __init__(
        self, fmt: ExportFormat, cursor: int | None, filters: Mapping[str, Any], policy: RetryPolicy
    ) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"format must be 'jsonl' or 'csv', not {fmt!r}")
        self.fmt = fmt
        self.cursor = cursor
        self.policy = policy
        self.filters = filter_query(LogFilter, filters)  # TypeError for an unknown filter
        self.rows = 0
        self.bytes = 0
        self._attempt = 0
        self._header_written = False
        self._begin_body()

    def call(self) -> Call[None]:
        """The request that continues the export after the last complete row."""
        self._attempt += 1
        params = self.filters | query(format=self.fmt, cursor=self.cursor)
        return Call("GET", "/api/export/logs", None, params=params)

    def _begin_body(self) -> None:
        self._pending = b""  # the start of a row whose end has not arrived
        self._quotes = 0  # quotes in ``_pending``: a CSV row ends at a newline outside quotes
        self._header_due = self.fmt == "csv"  # every CSV body starts with the header

    def refused(self, response: httpx.Response) -> float:
        """Seconds to wait after an error status (read body); raises when not to retry."""
        if response.status_code in RETRY_STATUSES:
            delay = self.policy.delay(self._attempt, response.headers.get("Retry-After"))
            if delay is not None:
                return delay
        raise error_for(response.status_code, response.content)

    def lost(self, error: httpx.TransportError) -> float:
        """Seconds to wait after a lost connection; raises ServerUnreachableError when the
        retry policy gives up."""
        self._begin_body()
        delay = self.policy.delay(self._attempt)
        if delay is None:
            raise unreachable(error) from error
        return delay

    def feed(self, chunk: bytes) -> bytes:
        """The complete rows that ``chunk`` ends (to be written), minus a repeated header."""
        out: list[bytes] = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            piece = chunk[start : end + 1]
            start = end + 1
            self._quotes += piece.count(b'"')
            self._pending += piece
            if self._quotes % 2:
                continue  # a line break inside a quoted CSV value
            row, self._pending, self._quotes = self._pending, b"", 0
            if self._header_due:
                self._header_due = False
                if self._header_written:
                    continue  # resumed: the header is in the file already
                self._header_written = True
            else:
                self.cursor = _row_id(row, self.fmt)
                self.rows += 1
                self._attempt = 1  # progress: this request is the first of a new budget
            out.append(row)
        rest = chunk[start:]
        self._quotes += rest.count(b'"')
        self._pending += rest
        data = b"".join(out)
        self.bytes += len(data)
        return data

    def ended(self) -> None:
        """The body ended; a row without its end means the server broke off."""
        if self._pending:
            raise httpx.RemoteProtocolError("the export ended inside a row")

    def result(self, path: Path | None) -> ExportResult:
        return ExportResult(rows=self.rows, bytes=self.bytes, cursor=self.cursor, path=path)


def _row_id(row: bytes, fmt: ExportFormat) -> int:
    if fmt == "csv":
        return int(row[: row.index(b",")])
    prefix = b'{"id":'
    if row.startswith(prefix):  # the server writes the id first; parse the rest only if not
        return int(row[len(prefix) : row.index(b",")])
    return int(json.loads(row)["id"])


@contextmanager
def opened(target: Target) -> Iterator[tuple[IO[bytes], Path | None]]:
    """A binary file for the rows: a path's hidden part file (renamed into place when the
    block ends normally, removed when it raises), or the caller's own file object."""
    if not isinstance(target, str | os.PathLike):
        yield target, None
        return
    out = Path(target)
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder; name the file to write")
    part = out.with_name(f".part-{out.name}")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as sink:
            yield sink, out
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
