"""Waiting for work without polling the tasks table: a per-process signal that wakes waiting
claimers when a task may have become ready.

PostgreSQL: one connection per process ``LISTEN``s on :data:`CHANNEL`; the store ``NOTIFY``s
it (delivered at commit) when a task is created or goes back to pending (:func:`announce`).
SQLite has no notifications across processes; one connection per process reads
``PRAGMA data_version`` every few milliseconds, which changes when any other connection commits
(a read of the shared WAL index, no disk access). Either way a woken waiter first asks whether
a task is ready with a read (:func:`~swarm_director.store.queue.has_ready_task`) and claims only
then, and every waiter also looks once a second, for retries whose backoff ends and leases that
expire (no event announces those).

Behind a pooler in transaction mode (PgBouncer) ``LISTEN`` does not work: the pooler hands the
server connection that listened to other clients after the statement, so notifications are
lost or land on someone else's connection. There (``listen=False``) the watcher reads the
primary's WAL insert position every :data:`POOLED_POLL_S` instead, which moves with every
commit, the way SQLite's ``data_version`` does: one tiny query a few times a second per
process, no table touched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from swarm_director.store._common import core_connection

#: The PostgreSQL notification channel of ready tasks.
CHANNEL = "swarm_director_tasks"
#: How often SQLite's watcher reads data_version.
SQLITE_POLL_S = 0.005
#: How often the watcher reads the WAL position when it may not LISTEN.
POOLED_POLL_S = 0.05
#: A waiter looks at least this often, notified or not: a little under the pool's idle-ping
#: threshold (db.engine.PING_AFTER_IDLE_S), so that its connection is not pinged each time.
FALLBACK_S = 0.9
_log = logging.getLogger(__name__)
T = TypeVar("T")


def announce(source: Session | Connection) -> None:
    """Tell waiting claimers (on PostgreSQL; at commit) that a task may be ready."""
    connection = core_connection(source)
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class ReadySignal:
    """Wakes :meth:`wait` callers of this process when the database may hold a ready task.
    The watcher thread starts with the first wait and stops with :meth:`close`."""

    def __init__(self, engine: Engine, *, listen: bool = True) -> None:
        self._engine = engine
        self._listen_ok = listen
        self._changed = threading.Condition()
        self._generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int:
        """A number that grows with every wake-up (read it before looking for work)."""
        return self._generation

    def wait(self, seen: int, timeout: float) -> None:
        """Return when the generation moves past ``seen``, or after ``timeout`` seconds."""
        self._start()
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout)

    def _wake(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._changed:
            if self._thread is None:
                watch = self._poll
                if self._engine.dialect.name == "postgresql":
                    watch = self._listen if self._listen_ok else self._poll_position
                self._thread = threading.Thread(target=self._run, args=(watch,), daemon=True)
                self._thread.start()

    def _run(self, watch: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                watch()
            except Exception:  # the database went away: waiters fall back to looking
                _log.warning("task signal: watcher failed; retrying", exc_info=True)
                self._wake()
                self._stop.wait(FALLBACK_S)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            driver.autocommit = True
            driver.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set():
                for _ in driver.notifies(timeout=0.5, stop_after=1):
                    self._wake()
        finally:
            raw.invalidate()  # it LISTENed: never hand it back to the pool

    def _poll(self) -> None:
        with self._engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            last = connection.exec_driver_sql("PRAGMA data_version").scalar()
            while not self._stop.wait(SQLITE_POLL_S):
                now = connection.exec_driver_sql("PRAGMA data_version").scalar()
                if now != last:
                    last = now
                    self._wake()

    def _poll_position(self) -> None:
        # Each read is a transaction of its own, so it may run on any pooled server connection.
        with self._engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            query = text("SELECT pg_current_wal_insert_lsn()::text")
            last = connection.execute(query).scalar()
            while not self._stop.wait(POOLED_POLL_S):
                now = connection.execute(query).scalar()
                if now != last:
                    last = now
                    self._wake()

    def close(self) -> None:
        """Stop the watcher (waiters return within their timeout)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2.0)


def wait_for(
    signal: ReadySignal,
    attempt: Callable[[], T | None],
    ready: Callable[[], bool],
    wait_s: float,
) -> T | None:
    """Run ``attempt`` now and, while it finds nothing, again whenever ``ready()`` says it
    would succeed, until ``wait_s`` seconds have passed; its first result, else None."""
    deadline = time.monotonic() + wait_s
    seen = signal.generation
    found = attempt()
    while found is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        signal.wait(seen, min(left, FALLBACK_S))
        seen = signal.generation
        if ready():
            found = attempt()
    return found
