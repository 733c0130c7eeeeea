"""Statement timings: the slowest statement shapes of every process, kept in the database.

:meth:`StatementTimings.install` hooks an engine's dialect (``do_execute`` and friends, which
time the DBAPI call itself). Each statement is reduced to its *shape* (bound parameters are
already placeholders; expanded ``IN (...)`` lists and any literals are folded) and only
per-shape counters are kept: count, total and worst time. The overhead on the request path is
one event dispatch, two ``perf_counter`` calls and a dict update per statement
(``bench/ops.py`` measures it).

Where the figures go, and why there. A background thread of the process merges the counters
gathered since its last flush into the ``statement_timings`` table every
``SWARM_TIMINGS_FLUSH`` (and once more when the process exits):
:func:`swarm_director.ops.stats.timings_table.merge`, one UPSERT per shape (count and total added,
worst and last-seen kept at their maximum, the process's ``host:pid`` added to ``sources``),
then the table is pruned to the ``SWARM_TIMINGS_KEEP`` slowest shapes. So every server of a
database, on any host, adds to one list, and ``db stats`` or ``/api/admin/stats`` read it
from anywhere. Rejected: per-process snapshot files under ``SWARM_DATA_DIR`` (what this
replaced: relative to the working directory, so ``db stats`` elsewhere found nothing, and
each host kept its own list), and a write per statement (a write on the request path, and
on SQLite a second writer for every read).

The flush is safe for the service: its statements carry the :data:`UNTIMED` execution
option and are not recorded; any error (the database busy or gone, the table missing below
revision 006) puts the counters back to be merged at the next attempt and never reaches a
request; on SQLite it waits at most :data:`FLUSH_LOCK_WAIT_S` for the write lock and holds it
for one short transaction, on PostgreSQL the same bound is its ``lock_timeout``.

On PostgreSQL with the ``pg_stat_statements`` extension installed *and* preloaded,
``db stats`` also lists the server's own view (:func:`~swarm_director.ops.stats.timings_table.
server_statements`); it needs ``shared_preload_libraries``, a server restart, so the table
above is what is always there.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, event

from swarm_director.ops.stats import timings_table
from swarm_director.ops.stats.timings_table import ShapeStats

#: Execution option: statements run with it are not recorded (the flush's own).
UNTIMED = "swarm_untimed"
#: Longest wait of a flush for a lock; busy longer, it gives up and retries next time.
FLUSH_LOCK_WAIT_S = 0.2

_IN_LIST = re.compile(
    r"\(\s*(?:(?:\?|%\(\w+\)s|:\w+|\$\d+)(?:::\w+)?\s*,\s*)+"
    r"(?:\?|%\(\w+\)s|:\w+|\$\d+)(?:::\w+)?\s*\)"
)
_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")
_VALUES_ROWS = re.compile(r"(VALUES\s*\([^()]*\))(?:\s*,\s*\([^()]*\))+", re.IGNORECASE)


def shape_of(statement: str) -> str:
    """The statement with literals and expanded lists folded: one shape per query."""
    text = _STRING.sub("?", statement)
    text = _NUMBER.sub("?", text)
    text = _IN_LIST.sub("(...)", text)
    text = _VALUES_ROWS.sub(r"\1, ...", text)
    return _SPACE.sub(" ", text).strip()


class StatementTimings:
    """The per-shape counters of one process since its last flush; thread-safe.

    ``capacity`` bounds the shapes held between flushes (the fastest is dropped when full),
    ``keep`` the shapes the table keeps, ``flush_every_s`` the flush period.
    """

    def __init__(
        self, capacity: int = 100, *, keep: int = 100, flush_every_s: float = 30.0
    ) -> None:
        self.capacity = capacity
        self.keep = keep
        self.flush_every_s = flush_every_s
        self._pending: dict[str, ShapeStats] = {}
        self._shapes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        _LIVE.add(self)

    # -- the request path ------------------------------------------------------------------

    def record(self, statement: str, seconds: float) -> None:
        """Count one execution of ``statement`` that took ``seconds``."""
        shape = self._shapes.get(statement)
        if shape is None:
            shape = shape_of(statement)
            if len(self._shapes) > 4096:
                self._shapes.clear()
            self._shapes[statement] = shape
        with self._lock:
            stats = self._pending.get(shape)
            if stats is None:
                if len(self._pending) >= self.capacity:
                    fastest = min(self._pending.values(), key=lambda s: s.max_s)
                    if fastest.max_s >= seconds:
                        return
                    del self._pending[fastest.shape]
                stats = self._pending[shape] = ShapeStats(shape)
            stats.count += 1
            stats.total_s += seconds
            stats.last_seen = time.time()
            if seconds > stats.max_s:
                stats.max_s = seconds
        if self._thread is None and self._engine is not None:
            self._start_flusher()

    def pending(self) -> list[ShapeStats]:
        """The shapes recorded since the last flush, worst first."""
        with self._lock:
            return sorted(self._pending.values(), key=lambda s: s.max_s, reverse=True)

    # -- the flush -------------------------------------------------------------------------

    def flush(self) -> bool:
        """Merge the counters since the last flush into the database's table.

        Returns False when that failed (busy, unreachable, no table yet); the counters are
        then kept for the next flush. Never raises.
        """
        engine = self._engine
        if engine is None:
            return False
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return True
        try:
            timings_table.merge(
                engine.execution_options(**{UNTIMED: True}),
                list(batch.values()),
                keep=self.keep,
                lock_wait_s=FLUSH_LOCK_WAIT_S,
            )
        except Exception:  # statistics must never break the service: retry next time
            self._put_back(batch)
            return False
        return True

    def _put_back(self, batch: dict[str, ShapeStats]) -> None:
        with self._lock:
            for shape, stats in batch.items():
                newer = self._pending.get(shape)
                if newer is not None:
                    stats.absorb(newer)
                self._pending[shape] = stats
            if len(self._pending) > self.capacity:
                ordered = sorted(self._pending.values(), key=lambda s: s.max_s, reverse=True)
                self._pending = {s.shape: s for s in ordered[: self.capacity]}

    def _start_flusher(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._flush_periodically, name="statement-timings", daemon=True
            )
        self._thread.start()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.flush_every_s):
            self.flush()

    def stop(self) -> None:
        """Stop the flusher thread (without a last flush: the engine may be going away)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        _LIVE.discard(self)

    def _after_fork(self) -> None:
        # The child has no flusher thread and must not flush what the parent will.
        self._lock = threading.Lock()
        self._pending = {}
        self._thread = None

    # -- the hooks -------------------------------------------------------------------------

    def install(self, engine: Engine) -> None:
        """Time every statement ``engine`` runs and flush to its database (idempotent).

        Uses the dialect's ``do_execute*`` hooks, which run the DBAPI call themselves: one
        event per statement, about half the cost of the before/after cursor-execute pair.
        The flusher thread starts with the first statement recorded, so in a forking server
        it runs in each worker.
        """
        dialect = engine.dialect
        if dialect in _INSTALLED:
            return
        _INSTALLED[dialect] = self
        self._engine = engine
        clock = time.perf_counter
        record = self.record

        def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
            began = clock()
            cursor.execute(statement, parameters)
            if not (context is not None and context.execution_options.get(UNTIMED)):
                record(statement, clock() - began)
            return True

        def do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
            began = clock()
            cursor.execute(statement)
            if not (context is not None and context.execution_options.get(UNTIMED)):
                record(statement, clock() - began)
            return True

        def do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
            began = clock()
            cursor.executemany(statement, parameters)
            if not (context is not None and context.execution_options.get(UNTIMED)):
                record(statement, clock() - began)
            return True

        event.listen(engine, "do_execute", do_execute)
        event.listen(engine, "do_execute_no_params", do_execute_no_params)
        event.listen(engine, "do_executemany", do_executemany)


_INSTALLED: weakref.WeakKeyDictionary[Any, StatementTimings] = weakref.WeakKeyDictionary()
_LIVE: weakref.WeakSet[StatementTimings] = weakref.WeakSet()


def _flush_all_at_exit() -> None:
    # A gunicorn worker leaving on SIGTERM still hands over its last counters.
    for timings in list(_LIVE):
        timings.flush()


def _forget_after_fork() -> None:
    for timings in list(_LIVE):
        timings._after_fork()


atexit.register(_flush_all_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
