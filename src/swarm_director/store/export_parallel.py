"""An export read by several processes at once, from one snapshot of the database.

One process reading an export uses one core: SQLite formats every line in the process itself,
and PostgreSQL formats them in the one server process of the connection. Here the export's
rows are cut into segments of :data:`SEGMENT_ROWS` rows in the export's order, and forked
worker processes take the segments in turn (worker ``w`` of ``n`` formats segments ``w``,
``w + n``, ...). The parent hands the segments on in order, so the text is the same, byte for
byte, as one process's (:func:`swarm_director.store.export.text_chunks`).

- **Segments.** Every worker finds every segment's last row itself: the key of the row
  :data:`SEGMENT_ROWS` on (``LIMIT 1 OFFSET``), read through the ordering's index without
  formatting anything; it formats only its own segments. So the workers agree on the cuts
  without talking to each other, as long as they see the same rows.
- **One snapshot.** On PostgreSQL the parent exports its transaction's snapshot
  (``pg_export_snapshot()``) and the workers import it (``SET TRANSACTION SNAPSHOT``), as
  ``pg_dump --jobs`` does. On SQLite the parent holds the write lock (``BEGIN IMMEDIATE``)
  while the workers start their read transactions, so that no commit falls between them; it
  lets go as soon as they have (writers wait for a few milliseconds).
- **Memory.** A worker formats its next segment while the parent writes the others', so it
  holds at most one segment's text (:data:`HELD_BYTES` at most, for very long rows); the
  parent holds one chunk at a time.

Workers are forked: only where ``os.fork`` exists and the calling process has no other
thread (forking a process with threads can leave a lock held forever in the child);
:func:`can_fork` says.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import struct
import sys
import threading
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Engine, bindparam
from sqlalchemy.sql.compiler import SQLCompiler

from swarm_director.errors import SwarmError
from swarm_director.schemas.export import ExportFormat
from swarm_director.store.driver_reads import compiled, driver_statement
from swarm_director.store.export import (
    PG_EXPORT_SESSION,
    Chunk,
    Export,
    header_line,
    line_statement,
    pg_copy,
)
from swarm_director.store.pagination import after_values, through_condition

#: Rows of a segment, the unit of work of a worker.
SEGMENT_ROWS = 10_000
#: Bytes of text a worker holds before it hands them on, even within a segment.
HELD_BYTES = 16 << 20
#: What a worker reads before it gives it to its sink, which bounds what it holds: rows
#: (SQLite) or bytes (PostgreSQL).
PIECE_ROWS = 1_000
PIECE_BYTES = 1 << 20
#: The size of each worker's pipe (Linux's default is 64 KiB; its usual limit, 1 MiB).
PIPE_BYTES = 1 << 20

# A frame: its kind, the bytes that follow and the rows they hold.
_FRAME = struct.Struct("<Bqq")
_READY, _DATA, _SEGMENT_END, _DONE, _FAILED = range(5)
#: PostgreSQL: the transaction the command exports its snapshot from and each worker imports
#: it into (an imported snapshot needs REPEATABLE READ or SERIALIZABLE).
_PG_SNAPSHOT_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


class ParallelExportError(SwarmError):
    """A worker of a parallel export failed or stopped."""

    code = "export_error"


def can_fork() -> bool:
    """Whether this process can fork export workers (see the module docstring)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


@dataclass(frozen=True)
class _Statement:
    """A statement compiled for the driver, with slots for a segment's keys."""

    sql: str
    params: dict[str, Any]
    positions: tuple[str, ...] | None
    """SQLite: the parameters' names in the order of the ``?``; None: named (PostgreSQL)."""

    @classmethod
    def of(cls, statement: SQLCompiler, positional: bool) -> _Statement:
        sql, params = driver_statement(statement)
        return cls(sql, params, tuple(statement.positiontup or ()) if positional else None)

    def bound(self, slots: dict[str, Any]) -> Any:
        values = {**self.params, **slots}
        if self.positions is None:
            return values
        return [values[name] for name in self.positions]


@dataclass(frozen=True)
class _Plan:
    """What a worker runs: the statements of every kind of segment."""

    dialect: str
    last_row: dict[bool, _Statement]
    """After a start key or from the beginning: the key of the segment's last row."""
    lines: dict[tuple[bool, bool], _Statement]
    """(after a start key, up to an end key): the segment's lines."""

    def slots(self, start: tuple[Any, ...] | None, end: tuple[Any, ...] | None) -> dict[str, Any]:
        found = {f"export_lo_{n}": v for n, v in enumerate(start or ())}
        return found | {f"export_hi_{n}": v for n, v in enumerate(end or ())}


def _plan(export: Export, fmt: ExportFormat, engine: Engine) -> _Plan:
    dialect = engine.dialect
    keys = export.ordering.keys
    lo = [bindparam(f"export_lo_{n}", None, type_=k.type) for n, k in enumerate(keys)]
    hi = [bindparam(f"export_hi_{n}", None, type_=k.type) for n, k in enumerate(keys)]
    sqlite = dialect.name == "sqlite"

    def part(after: bool, through: bool) -> Export:
        narrowed = export.narrowed(after_values(export.ordering, lo)) if after else export
        return narrowed.narrowed(through_condition(export.ordering, hi)) if through else narrowed

    last_row = {
        after: _Statement.of(
            compiled(part(after, False).rows(*keys).limit(1).offset(SEGMENT_ROWS - 1), dialect),
            sqlite,
        )
        for after in (False, True)
    }
    lines: dict[tuple[bool, bool], _Statement] = {}
    for after in (False, True):
        for through in (False, True):
            if sqlite:
                lines[after, through] = _Statement.of(
                    line_statement(part(after, through), fmt, dialect), True
                )
            else:
                sql, params = pg_copy(part(after, through), fmt, dialect, header=False)
                lines[after, through] = _Statement(sql, params, None)
    return _Plan(dialect.name, last_row, lines)


def parallel_chunks(
    engine: Engine, export: Export, fmt: ExportFormat, workers: int
) -> Generator[Chunk]:
    """The export as JSON lines or CSV (with its header line), in chunks of whole lines, read
    by ``workers`` forked processes (see the module docstring); raises ParallelExportError when
    a worker fails."""
    if fmt is ExportFormat.PARQUET:
        raise ValueError("Parquet is parsed from the CSV text (ops.export_file)")
    plan = _plan(export, ExportFormat(fmt), engine)
    context = multiprocessing.get_context("fork")
    with ExitStack() as stack:
        readers: list[BinaryIO] = []
        processes: list[Any] = []
        stack.callback(_stop, processes)
        with _snapshot(engine) as token:
            for me in range(workers):
                read_end, write_end = os.pipe()
                _enlarge(write_end)
                process = context.Process(
                    target=_work,
                    args=(engine, plan, token, me, workers, write_end),
                    name=f"swarm-director export worker {me + 1}/{workers}",
                    daemon=True,
                )
                process.start()
                os.close(write_end)
                processes.append(process)
                readers.append(stack.enter_context(os.fdopen(read_end, "rb", PIPE_BYTES)))
            for reader in readers:  # every worker is in the snapshot before it is let go
                kind, _rows, _payload = _frame(reader)
                if kind != _READY:
                    problem = _payload.decode()
                    raise ParallelExportError(f"an export worker failed to start: {problem}")
        if fmt is ExportFormat.CSV:
            yield Chunk(header_line(export), 0)
        segment = 0
        while True:
            reader = readers[segment % workers]
            while True:
                kind, rows, payload = _frame(reader)
                if kind == _DATA:
                    yield Chunk(payload, rows)
                elif kind == _SEGMENT_END:
                    break
                elif kind == _DONE:
                    _join(processes)
                    return
                else:
                    raise ParallelExportError(f"an export worker failed: {payload.decode()}")
            segment += 1


def _enlarge(pipe: int) -> None:
    """Make the pipe :data:`PIPE_BYTES` large where the system lets it (``F_SETPIPE_SZ``,
    Linux): the workers run further ahead of the parent. Without it, all the same."""
    with suppress(OSError, ImportError, AttributeError):
        import fcntl

        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _frame(reader: BinaryIO) -> tuple[int, int, bytes]:
    head = reader.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise ParallelExportError("an export worker stopped before the export was read")
    kind, size, rows = _FRAME.unpack(head)
    payload = reader.read(size) if size else b""
    if len(payload) < size:
        raise ParallelExportError("an export worker stopped before the export was read")
    return kind, rows, payload


def _join(processes: list[Any]) -> None:
    """Wait for the workers to end of themselves (the last are finding the end too)."""
    for process in processes:
        process.join(timeout=10)


def _stop(processes: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()


@contextmanager
def _snapshot(engine: Engine) -> Iterator[str | None]:
    """While the block runs, the workers can start their transactions in one snapshot: on
    PostgreSQL the exported snapshot's name, on SQLite the write lock held (None)."""
    raw = engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        if engine.dialect.name == "postgresql":
            driver.autocommit = True
            driver.execute(_PG_SNAPSHOT_BEGIN)
            token = driver.execute("SELECT pg_export_snapshot()").fetchone()[0]
            try:
                yield str(token)
            finally:
                driver.execute("ROLLBACK")
                driver.autocommit = False
        else:
            driver.execute("BEGIN IMMEDIATE")
            try:
                yield None
            finally:
                driver.execute("ROLLBACK")
    finally:
        raw.close()


# -- the worker --------------------------------------------------------------------------------


class _Sink:
    """A worker's end of its pipe: frames, the text of a segment held until it is whole."""

    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "wb", PIPE_BYTES)
        self._held: list[bytes] = []
        self._held_bytes = self._held_rows = 0

    def send(self, kind: int, payload: bytes = b"", rows: int = 0) -> None:
        self._out.write(_FRAME.pack(kind, len(payload), rows))
        if payload:
            self._out.write(payload)

    def hold(self, data: bytes, rows: int) -> None:
        self._held.append(data)
        self._held_bytes += len(data)
        self._held_rows += rows
        if self._held_bytes >= HELD_BYTES:
            self.hand_on()

    def hand_on(self) -> None:
        if self._held:
            self.send(_DATA, b"".join(self._held), self._held_rows)
        self._held, self._held_bytes, self._held_rows = [], 0, 0

    def end(self, kind: int, payload: bytes = b"") -> None:
        """Hand on what is held, then a frame of ``kind``, and flush the pipe."""
        self.hand_on()
        self.send(kind, payload)
        self._out.flush()

    def close(self) -> None:
        with suppress(OSError):
            self._out.close()


def _work(engine: Engine, plan: _Plan, token: str | None, me: int, workers: int, fd: int) -> None:
    # Ctrl+C reaches the whole process group: the command stops the workers itself (SIGTERM,
    # _stop), so a worker does not answer it with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sink = _Sink(fd)
    driver: Any = None
    try:
        engine.dispose(close=False)  # the parent's connections stay the parent's
        driver = engine.raw_connection().driver_connection
        _begin(driver, plan.dialect, token)
        sink.end(_READY)
        _segments(driver, plan, me, workers, sink)
    except Exception as error:
        # Told to the command, which raises it: one error, not a worker's traceback as well.
        with suppress(OSError):
            sink.end(_FAILED, f"{type(error).__name__}: {error}".encode())
        sys.exit(1)
    finally:
        sink.close()
        if driver is not None:  # closed, not dropped: the server logs no lost client
            with suppress(Exception):
                driver.close()


def _segments(driver: Any, plan: _Plan, me: int, workers: int, sink: _Sink) -> None:
    """Find every segment's end; format and hand on worker ``me``'s segments."""
    start: tuple[Any, ...] | None = None
    segment = 0
    while True:
        end = _last_row(driver, plan, start)
        if segment % workers == me:
            _lines(driver, plan, start, end, sink)
            if end is None:
                sink.end(_DONE)
                return
            sink.end(_SEGMENT_END)
        elif end is None:
            return
        start, segment = end, segment + 1


def _begin(driver: Any, dialect: str, token: str | None) -> None:
    if dialect == "postgresql":
        from psycopg import sql

        driver.autocommit = True
        driver.execute(_PG_SNAPSHOT_BEGIN)
        driver.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(token)))
        driver.execute(PG_EXPORT_SESSION)
    else:
        driver.execute("BEGIN")
        driver.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # the snapshot


def _last_row(driver: Any, plan: _Plan, start: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    statement = plan.last_row[start is not None]
    if plan.dialect == "sqlite":
        driver.text_factory = str  # the keys as stored, to compare with the stored text
    row = driver.execute(statement.sql, statement.bound(plan.slots(start, None))).fetchone()
    return None if row is None else tuple(row)


def _lines(
    driver: Any,
    plan: _Plan,
    start: tuple[Any, ...] | None,
    end: tuple[Any, ...] | None,
    sink: _Sink,
) -> None:
    statement = plan.lines[start is not None, end is not None]
    params = statement.bound(plan.slots(start, end))
    if plan.dialect == "sqlite":
        driver.text_factory = bytes  # each line as SQLite holds it: UTF-8
        cursor = driver.execute(statement.sql, params)
        while rows := cursor.fetchmany(PIECE_ROWS):
            sink.hold(b"".join([row[0] for row in rows]), len(rows))
        return
    buffer, rows = bytearray(), 0
    with driver.cursor() as cursor, cursor.copy(statement.sql, params) as copy:
        for line in copy:  # one row a line
            buffer += line
            rows += 1
            if len(buffer) >= PIECE_BYTES:  # the sink bounds what it holds
                sink.hold(bytes(buffer), rows)
                buffer.clear()
                rows = 0
    sink.hold(bytes(buffer), rows)
