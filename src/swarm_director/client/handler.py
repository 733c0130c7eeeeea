"""``RemoteLogHandler``: Python :mod:`logging` to the API's batch log ingest.

The agent's thread only formats the record and appends it to a bounded in-memory queue;
a background thread sends batches (when ``batch_size`` records wait, or the oldest has waited
``flush_interval`` seconds) as ``POST /api/tasks/{id}/logs`` lists with an ``Idempotency-Key``.
A batch that fails for want of a server is kept and re-sent with the *same* key until it is
stored, so a response lost on the way back never stores it twice; meanwhile new records wait
in the queue. Beyond ``max_queue`` the oldest are dropped, counted in :attr:`dropped`, and
reported — on stderr, and as a warning record sent once the server answers again.
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
from typing import Any

from swarm_director.client.errors import (
    ClientError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from swarm_director.client.retry import RetryPolicy
from swarm_director.client.sync import Client
from swarm_director.schemas.log_records import RecordDefaults, Row, record_row


def _transient(error: ClientError) -> bool:
    """Worth re-sending (with the same key): no answer, 429, or a server-side failure."""
    return (
        isinstance(error, UnavailableError)
        or error.status is None
        or error.status == 429
        or error.status >= 500
    )


@dataclass
class _Batch:
    """Rows of one task on their way, with the key that makes re-sending them safe."""

    task_id: int
    rows: list[Row]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


class RemoteLogHandler(logging.Handler):
    """A :class:`logging.Handler` that stores records as agent logs through the REST API.

    ``task_id``, ``agent_type``, ``agent_id`` and ``session_id`` are defaults; a record's
    ``extra`` of the same names wins and ``extra={"metadata": {...}}`` is stored with the row,
    exactly as :class:`swarm_director.logging.AgentLogHandler` does. Records naming no task are
    skipped (counted in :attr:`skipped`). :meth:`flush` waits up to ``flush_timeout`` seconds,
    :meth:`close` (also run at interpreter exit) up to ``close_timeout``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        task_id: int | None,
        agent_type: str | None,
        token: str | None = None,
        agent_id: int | None = None,
        session_id: str | None = None,
        level: int = logging.NOTSET,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        flush_timeout: float = 2.0,
        close_timeout: float = 5.0,
        timeout: float = 10.0,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(level)
        self.defaults = RecordDefaults(task_id, agent_type, agent_id, session_id)
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.flush_timeout = flush_timeout
        self.close_timeout = close_timeout
        self.max_backoff = max_backoff
        self.sent = 0
        """Records the server stored."""
        self.dropped = 0
        """Records lost: the queue was full, or the handler closed with the server away."""
        self.rejected = 0
        """Records the server refused (their task is gone, a field it does not accept)."""
        self.skipped = 0
        """Records naming no task, which cannot be stored."""
        self.last_error: str | None = None
        """Why the last send failed (None after a success)."""
        # The handler retries forever itself; the client must not sleep inside a call.
        self._client = Client(base_url, token, timeout=timeout, retry=RetryPolicy(attempts=1))
        self._queue: deque[Row] = deque(maxlen=max(1, max_queue))
        self._oldest = 0.0
        self._unreported_drops = 0
        self._in_flight: list[_Batch] = []
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="RemoteLogHandler", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- called by the agent ------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``; never waits for the network and never raises."""
        if threading.current_thread() is self._thread:
            return  # the sender's own logging (httpx) would feed back into itself
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
            self._report(f"{lost} log records not sent at close: {self.last_error}")
        self._client.close()
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
        self._wake.set()
        with self._cond:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _due(self) -> bool:
        with self._cond:
            if not self._queue:
                return False
            waited = time.monotonic() - self._oldest
            return len(self._queue) >= self.batch_size or waited >= self.flush_interval

    def _take(self) -> None:
        """Move the next batch from the queue into flight, one batch per task."""
        with self._cond:
            count = min(len(self._queue), self.batch_size)
            rows = [self._queue.popleft() for _ in range(count)]
            if self._queue:
                self._oldest = time.monotonic()
            by_task: dict[int, list[Row]] = {}
            for row in rows:
                by_task.setdefault(row.pop("task_id"), []).append(row)
            self._in_flight = [_Batch(task_id, group) for task_id, group in by_task.items()]

    def _run(self) -> None:
        backoff, retry_at = 0.0, 0.0
        while not self._stopping:
            woken = self._wake.wait(min(self.flush_interval, 0.25))
            self._wake.clear()
            if time.monotonic() < retry_at:
                continue  # backing off: neither a full queue nor flush() makes it sooner
            while not self._stopping:
                if not self._in_flight:
                    if not (woken or self._due()):
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
        """Send the batches in flight; False when the server is away (they stay in flight)."""
        while self._in_flight:
            batch = self._in_flight[0]
            try:
                self.sent += self._client.add_logs(
                    batch.task_id, batch.rows, idempotency_key=batch.key
                ).inserted
            except ClientError as error:
                if _transient(error):
                    self.last_error = f"{error.code}: {error.message}"
                    return False
                self._refused(batch, error)
            self.last_error = None
            with self._cond:
                self._in_flight.pop(0)
                if not self._in_flight:
                    # Queued in the same step, so flush() cannot return in between.
                    self._queue_drop_report()
                self._cond.notify_all()
        return True

    def _refused(self, batch: _Batch, error: ClientError) -> None:
        if isinstance(error, ValidationError) and len(batch.rows) > 1:
            # A batch is all or nothing: find the rows the server refuses and keep the rest.
            with self._cond:
                singles = [_Batch(batch.task_id, [row]) for row in batch.rows]
                self._in_flight[1:1] = singles
            return
        self.rejected += len(batch.rows)
        why = (
            "the token is not accepted"
            if isinstance(error, UnauthorizedError | ForbiddenError)
            else error.message
        )
        if isinstance(error, NotFoundError):
            why = f"task {batch.task_id} does not exist"
        self._report(f"{len(batch.rows)} log records refused by the server: {why}")

    def _queue_drop_report(self) -> None:
        """Report unreported drops (the caller holds the lock): on stderr, and as a warning
        record to the handler's task, sent next."""
        count, self._unreported_drops = self._unreported_drops, 0
        if not count:
            return
        text = (
            f"RemoteLogHandler dropped {count} log records: its queue was full (bound "
            f"{self._queue.maxlen}) while the server was away or slower than the logging; "
            f"{self.dropped} in all"
        )
        self._report(text)
        task_id = self.defaults.task_id
        if task_id is None:
            return
        row: dict[str, Any] = {
            "agent_type": (self.defaults.agent_type or "agent")[:50],
            "message": text,
            "log_level": "warning",
            "metadata": {"dropped": count, "dropped_total": self.dropped, "handler": "remote"},
        }
        self._in_flight.append(_Batch(task_id, [row]))

    def _report(self, text: str) -> None:
        # logging's own convention for handler trouble: a line on stderr, never an exception.
        if logging.raiseExceptions:
            print(f"RemoteLogHandler: {text}", file=sys.stderr)
