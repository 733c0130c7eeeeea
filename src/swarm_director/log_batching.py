"""The batching core of both log handlers: bounded queue, sender thread, flush, close, drops.

:class:`BatchingLogHandler` does everything but deliver a batch; a subclass says how one
leaves in :meth:`~BatchingLogHandler._send` (``client.RemoteLogHandler`` posts it to the API,
``agent_logging.AgentLogHandler`` stores it through the store). The agent's thread only maps
the record to a row and appends it to a bounded queue; a background thread takes up to
``batch_size`` rows (when that many wait, the oldest has waited ``flush_interval``, or on
:meth:`flush`), splits them into one :class:`Batch` per task and sends each. A batch that
fails for want of its destination stays in flight and is sent again, unchanged and with the
same key, after a back-off, so a stored batch whose answer was lost is never stored twice and
the rows of a task keep their order; new records wait behind it. Beyond ``max_queue`` the
oldest rows are dropped and counted; the drop is reported on stderr and as a warning record
to the handler's task once a send succeeds again.

Imports only the standard library and :mod:`swarm_director.schemas`, so the client can use
it without the server's dependencies.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypedDict

from swarm_director.schemas.log_records import RecordDefaults, Row, record_row
from swarm_director.schemas.logs import MAX_AGENT_TYPE


class SendLater(Exception):
    """Raised by :meth:`BatchingLogHandler._send` when the destination is away (no answer,
    locked, overloaded): the batch stays in flight and is sent again after a back-off. The
    message becomes :attr:`BatchingLogHandler.last_error`."""


class Refused(Exception):
    """Raised by :meth:`BatchingLogHandler._send` when the destination will never store the
    batch as it is. With ``split`` (a row of it may be the cause) a batch of several rows is
    sent again row by row, so only the bad rows are lost; otherwise all its rows are rejected.
    The message says why, for the report."""

    def __init__(self, reason: str, *, split: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.split = split


class BatchOptions(TypedDict, total=False):
    """The core's keyword options that both handlers pass through unchanged (defaults in
    :class:`BatchingLogHandler`)."""

    level: int
    batch_size: int
    flush_interval: float
    flush_timeout: float
    close_timeout: float
    max_backoff: float


@dataclass(eq=False)  # two batches are never the same batch, whatever their rows
class Batch:
    """Rows of one task on their way, with the key that makes sending them again safe."""

    task_id: int
    rows: list[Row]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


class BatchingLogHandler(logging.Handler):
    """A :class:`logging.Handler` that stores records as agent log rows, in batches sent from
    a background thread; subclasses implement :meth:`_send` (and :meth:`_release`).

    ``task_id``, ``agent_type``, ``agent_id`` and ``session_id`` are defaults; a record's
    ``extra`` of the same names wins and ``extra={"metadata": {...}}`` is stored with the row
    (see :func:`swarm_director.schemas.log_records.record_row`). :meth:`flush` waits up to
    ``flush_timeout`` seconds, :meth:`close` (also run at interpreter exit) up to
    ``close_timeout``; what is not delivered by then is dropped and reported.
    """

    #: Where batches go and the verb for it, in reports ("refused by the server", "not sent").
    destination = "destination"
    delivered = "sent"
    #: The handler's name in a drop report's metadata ("remote", "database").
    kind = "batching"

    def __init__(
        self,
        defaults: RecordDefaults,
        *,
        level: int = logging.NOTSET,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        flush_timeout: float = 2.0,
        close_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(level)
        self.defaults = defaults
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.flush_timeout = flush_timeout
        self.close_timeout = close_timeout
        self.max_backoff = max_backoff
        self.sent = 0
        """Records stored at the destination."""
        self.dropped = 0
        """Records lost: the queue was full, or the handler closed with the destination away."""
        self.rejected = 0
        """Records the destination refused (their task is gone, a field it does not accept)."""
        self.skipped = 0
        """Records naming no task, which cannot be stored."""
        self.last_error: str | None = None
        """Why the last send failed (None after a success)."""
        self._queue: deque[Row] = deque(maxlen=max(1, max_queue))
        self._oldest = 0.0
        self._unreported_drops = 0
        self._flushing = 0
        self._in_flight: list[Batch] = []
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- how a batch leaves: the subclass's part ---------------------------------------------

    def _send(self, batch: Batch) -> int:
        """Deliver ``batch``; returns how many rows were stored. Raises :class:`SendLater`
        (try again later) or :class:`Refused` (never as it is); other exceptions count as
        :class:`SendLater`."""
        raise NotImplementedError

    def _release(self) -> None:
        """Close what the sender holds (a connection pool); called once, at close."""

    # -- called by the agent ------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``; never waits for the destination and never raises."""
        if threading.current_thread() is self._thread:
            return  # the sender's own logging (httpx, SQLAlchemy) would feed back into itself
        try:
            row = record_row(record, self.format(record), self.defaults)
            if row is None:
                self.skipped += 1
                return
            with self._cond:
                queue = self._queue
                if not queue:
                    self._oldest = time.monotonic()
                elif len(queue) == queue.maxlen:
                    self.dropped += 1  # append() evicts the oldest
                    self._unreported_drops += 1
                queue.append(row)
                full = len(queue) == self.batch_size  # once per batch, not on every record
            if full:
                self._wake.set()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Send what is queued; waits at most ``flush_timeout`` seconds."""
        self._wait_until_sent(self.flush_timeout)

    def close(self) -> None:
        """Send what is queued (within ``close_timeout``), then stop; what is left is dropped
        and reported on stderr."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        deadline = time.monotonic() + self.close_timeout
        self._wait_until_sent(self.close_timeout)
        with self._cond:
            self._stopping = True
        self._wake.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        with self._cond:
            lost = len(self._queue) + sum(len(batch.rows) for batch in self._in_flight)
            self._queue.clear()
            self._in_flight.clear()
            self.dropped += lost
        if lost:
            self._report(f"{lost} log records not {self.delivered} at close: {self.last_error}")
        self._release()
        super().close()

    @property
    def pending(self) -> int:
        """Records queued or on their way."""
        with self._cond:
            return len(self._queue) + sum(len(batch.rows) for batch in self._in_flight)

    # -- the sender thread ------------------------------------------------------------------

    def _wait_until_sent(self, timeout: float) -> None:
        if not self._thread.is_alive():
            return
        deadline = time.monotonic() + timeout
        with self._cond:
            # Counted, not just a wake-up: a flush during a back-off must still drain the
            # queue once the batch in flight is through.
            self._flushing += 1
            self._wake.set()
            try:
                while self._queue or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(remaining)
            finally:
                self._flushing -= 1

    def _due(self) -> bool:
        with self._cond:
            if not self._queue:
                return False
            if self._flushing or len(self._queue) >= self.batch_size:
                return True
            return time.monotonic() - self._oldest >= self.flush_interval

    def _take(self) -> None:
        """Move the next rows from the queue into flight, one batch per task."""
        with self._cond:
            count = min(len(self._queue), self.batch_size)
            rows = [self._queue.popleft() for _ in range(count)]
            if self._queue:
                self._oldest = time.monotonic()
            by_task: dict[int, list[Row]] = {}
            for row in rows:
                by_task.setdefault(row.pop("task_id"), []).append(row)
            self._in_flight = [Batch(task_id, group) for task_id, group in by_task.items()]

    def _run(self) -> None:
        backoff, retry_at = 0.0, 0.0
        while not self._stopping:
            self._wake.wait(min(self.flush_interval, 0.25))
            self._wake.clear()
            if time.monotonic() < retry_at:
                continue  # backing off: neither a full queue nor flush() makes it sooner
            while not self._stopping:
                if not self._in_flight:
                    if not self._due():
                        break
                    self._take()
                    if not self._in_flight:
                        break
                if not self._send_in_flight():
                    backoff = min(self.max_backoff, max(0.1, backoff * 2))
                    retry_at = time.monotonic() + backoff
                    break
                backoff = 0.0
            with self._cond:
                self._cond.notify_all()

    def _send_in_flight(self) -> bool:
        """Send the batches in flight; False when the destination is away (they stay)."""
        while self._in_flight:
            batch = self._in_flight[0]
            try:
                self.sent += self._send(batch)
            except Refused as refusal:
                self._refused(batch, refusal)
            except Exception as error:  # SendLater, or a failure the sender did not expect
                first_line = (str(error).splitlines() or [""])[0]
                if not isinstance(error, SendLater):
                    first_line = f"{type(error).__name__}: {first_line}"
                self.last_error = first_line
                return False
            self.last_error = None
            with self._cond:
                self._in_flight.remove(batch)
                if not self._in_flight:
                    # Queued in the same step, so flush() cannot return in between.
                    self._queue_drop_report()
                self._cond.notify_all()
        return True

    def _refused(self, batch: Batch, refusal: Refused) -> None:
        if refusal.split and len(batch.rows) > 1:
            # A batch is all or nothing: find the rows refused and keep the rest. The singles
            # go in front of the refused batch, which the caller then removes.
            with self._cond:
                singles = [Batch(batch.task_id, [row]) for row in batch.rows]
                self._in_flight[0:0] = singles
            return
        self.rejected += len(batch.rows)
        self._report(
            f"{len(batch.rows)} log records refused by the {self.destination}: {refusal.reason}"
        )

    def _queue_drop_report(self) -> None:
        """Report unreported drops (the caller holds the lock): on stderr, and as a warning
        record to the handler's task, sent next."""
        count, self._unreported_drops = self._unreported_drops, 0
        if not count:
            return
        text = (
            f"{type(self).__name__} dropped {count} log records: its queue was full (bound "
            f"{self._queue.maxlen}) while the {self.destination} was away or slower than the "
            f"logging; {self.dropped} in all"
        )
        self._report(text)
        task_id = self.defaults.task_id
        if task_id is None:
            return
        row: dict[str, Any] = {
            "agent_type": (self.defaults.agent_type or "agent")[:MAX_AGENT_TYPE],
            "message": text,
            "log_level": "warning",
            "metadata": {"dropped": count, "dropped_total": self.dropped, "handler": self.kind},
        }
        self._in_flight.append(Batch(task_id, [row]))

    def _report(self, text: str) -> None:
        # logging's own convention for handler trouble: a line on stderr, never an exception.
        if logging.raiseExceptions:
            print(f"{type(self).__name__}: {text}", file=sys.stderr)
