"""A bridge from Python's :mod:`logging` to ``agent_logs``.

An agent attaches :class:`AgentLogHandler` to its logger and logs as usual; the task id, agent
type, agent id and session id come from the handler's defaults or from the record's ``extra``::

    handler = AgentLogHandler("sqlite:///database/data/swarm_director_dev.db",
                              agent_type="email_agent", session_id="run-42")
    log = logging.getLogger("email_agent")
    log.addHandler(handler)
    log.info("draft sent for review", extra={"task_id": 7, "metadata": {"draft": 3}})
    ...
    handler.close()   # writes what is still buffered

``emit`` never touches the database: records go into a bounded in-memory buffer and a
background thread writes them in batches through :func:`swarm_director.store.logs.add_logs`,
one transaction per task and batch. When the database is busy or down the thread keeps the
rows and retries with back-off, so the agent is never blocked and never sees an exception;
only if the buffer overflows are the oldest rows dropped (counted in :attr:`dropped`).
Records without a task id cannot be stored (a log belongs to a task) and are skipped.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque

from sqlalchemy import exc as sa_exc

from swarm_director.config import load_settings
from swarm_director.db import Database, make_engine
from swarm_director.errors import DatabaseUnavailableError, NotFoundError, SwarmError
from swarm_director.schemas.log_records import RecordDefaults, Row, record_row
from swarm_director.store import logs


def _is_transient(error: BaseException) -> bool:
    """Errors worth retrying: the database is locked, restarting or unreachable."""
    if isinstance(error, DatabaseUnavailableError | sa_exc.OperationalError):
        return True
    if isinstance(error, sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


class AgentLogHandler(logging.Handler):
    """A :class:`logging.Handler` that stores records as agent logs, in batches.

    ``database`` is a :class:`~swarm_director.db.Database` (the caller keeps ownership), a
    database URL, or None for the configured database (``DATABASE_URL`` or the embedded file).
    ``task_id``, ``agent_type``, ``agent_id`` and ``session_id`` are defaults; a record's
    ``extra`` of the same names wins, and ``extra={"metadata": {...}}`` is stored with the row
    (next to the logger name, module, function and line). ``agent_type`` defaults to the
    logger's name.

    Rows are written when ``batch_size`` are waiting or every ``flush_interval`` seconds, at
    most ``max_buffer`` are kept while the database is unavailable, :meth:`flush` waits up to
    ``flush_timeout`` seconds and :meth:`close` up to ``close_timeout``.
    """

    def __init__(
        self,
        database: Database | str | None = None,
        *,
        task_id: int | None = None,
        agent_type: str | None = None,
        agent_id: int | None = None,
        session_id: str | None = None,
        level: int = logging.NOTSET,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        flush_timeout: float = 2.0,
        close_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(level)
        if isinstance(database, Database):
            self._database, self._owns_database = database, False
        elif isinstance(database, str):
            self._database, self._owns_database = Database(make_engine(database)), True
        else:
            self._database = Database.from_settings(load_settings())
            self._owns_database = True
        self.task_id = task_id
        self.agent_type = agent_type
        self.agent_id = agent_id
        self.session_id = session_id
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.flush_timeout = flush_timeout
        self.close_timeout = close_timeout
        self.max_backoff = max_backoff
        self.written = 0
        """Rows stored so far."""
        self.dropped = 0
        """Rows lost because the buffer was full or the handler closed with the database down."""
        self.rejected = 0
        """Rows the store refused (e.g. their task does not exist)."""
        self.skipped = 0
        """Records without a task id, which cannot be stored."""
        self._buffer: deque[Row] = deque(maxlen=max(1, max_buffer))
        self._in_flight = 0
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._last_error: str | None = None
        self._thread = threading.Thread(
            target=self._run, name="AgentLogHandler-writer", daemon=True
        )
        self._thread.start()

    # -- called by the agent ------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``; never blocks on the database and never raises."""
        if threading.current_thread() is self._thread:
            return  # the writer's own logging (e.g. SQLAlchemy) would feed back into itself
        try:
            row = self._row(record)
            if row is None:
                self.skipped += 1
                return
            with self._cond:
                if len(self._buffer) == self._buffer.maxlen:
                    self.dropped += 1  # append() below evicts the oldest row
                self._buffer.append(row)
                full = len(self._buffer) >= self.batch_size
            if full:
                self._wake.set()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write what is buffered; waits at most ``flush_timeout`` seconds."""
        self._wait_until_empty(self.flush_timeout)

    def close(self) -> None:
        """Write what is buffered, then stop the writer; waits at most ``close_timeout`` in all."""
        if not self._stopping:
            deadline = time.monotonic() + self.close_timeout
            self._wait_until_empty(self.close_timeout)
            with self._cond:
                self._stopping = True
            self._wake.set()
            self._thread.join(max(0.1, deadline - time.monotonic()))
            with self._cond:
                lost = len(self._buffer)
                self._buffer.clear()
                self.dropped += lost
            if lost:
                self._report(f"{lost} log rows not stored at close: {self._last_error}")
            if self._owns_database:
                self._database.dispose()
        super().close()

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        with self._cond:
            return len(self._buffer) + self._in_flight

    # -- internals ------------------------------------------------------------------------

    def _row(self, record: logging.LogRecord) -> Row | None:
        defaults = RecordDefaults(self.task_id, self.agent_type, self.agent_id, self.session_id)
        return record_row(record, self.format(record), defaults)

    def _wait_until_empty(self, timeout: float) -> None:
        if not self._thread.is_alive():
            return
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            while self._buffer or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _take(self) -> list[Row]:
        with self._cond:
            count = min(len(self._buffer), self.batch_size)
            batch = [self._buffer.popleft() for _ in range(count)]
            self._in_flight = len(batch)
            return batch

    def _give_back(self, batch: list[Row]) -> None:
        with self._cond:
            room = (self._buffer.maxlen or 0) - len(self._buffer)
            keep = batch[-room:] if room > 0 else []
            self.dropped += len(batch) - len(keep)
            self._buffer.extendleft(reversed(keep))
            self._in_flight = 0
            self._cond.notify_all()

    def _done(self) -> None:
        with self._cond:
            self._in_flight = 0
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = 0.0
        retry_at = 0.0
        while not self._stopping:
            self._wake.wait(backoff or self.flush_interval)
            self._wake.clear()
            if self._stopping or time.monotonic() < retry_at:
                continue  # woken early (buffer full, flush) while backing off
            while not self._stopping:
                batch = self._take()
                if not batch:
                    self._done()
                    break
                try:
                    self._write(batch)
                except Exception as error:  # transient: keep the rows, retry later
                    first_line = (str(error).splitlines() or [""])[0]
                    self._last_error = f"{type(error).__name__}: {first_line}"
                    self._give_back(batch)
                    backoff = min(self.max_backoff, max(0.05, backoff * 2))
                    retry_at = time.monotonic() + backoff
                    break
                backoff = 0.0
                self._done()

    def _write(self, batch: list[Row]) -> None:
        """Store ``batch``; raises only for transient errors (the caller retries)."""
        by_task: dict[int, list[Row]] = {}
        for row in batch:
            by_task.setdefault(row["task_id"], []).append(row)
        for task_id, rows in by_task.items():
            payload = [{k: v for k, v in row.items() if k != "task_id"} for row in rows]
            try:
                self._store(task_id, payload)
            except NotFoundError as error:  # the task is gone: none of its rows can be stored
                self._reject(len(rows), error)
            except Exception as error:
                if _is_transient(error):
                    raise
                self._write_one_by_one(task_id, payload)

    def _write_one_by_one(self, task_id: int, payload: list[Row]) -> None:
        # A batch is all-or-nothing; find the rows the store refuses and keep the rest.
        for row in payload:
            try:
                self._store(task_id, [row])
            except Exception as error:
                if _is_transient(error):
                    raise
                self._reject(1, error)

    def _store(self, task_id: int, rows: list[Row]) -> None:
        with self._database.transaction() as session:
            count = logs.add_logs(session, task_id, rows)
        self.written += count

    def _reject(self, count: int, error: Exception) -> None:
        self.rejected += count
        message = error.message if isinstance(error, SwarmError) else type(error).__name__
        self._report(f"{count} log rows refused by the store: {message}")

    def _report(self, text: str) -> None:
        # logging's own convention for handler trouble: a line on stderr, never an exception.
        if logging.raiseExceptions:
            print(f"AgentLogHandler: {text}", file=sys.stderr)
