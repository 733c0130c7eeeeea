"""Folding the report rollups' deltas and digesting the attempts' ended hours while the
service runs.

On PostgreSQL every log batch and task step appends delta rows to the rollups
(:mod:`swarm_director.models.rollup`), and a report sums an hour's row and its deltas, so the
reports slow down as the deltas pile up (a month of writes: 200,000 delta rows, 287 ms for the
30-day tasks report against 79 ms folded; docs/benchmarks.md). ``db optimize`` folds them, but
a service should not depend on a cron job to stay fast: each server process folds every
``SWARM_ROLLUP_FOLD`` (5 minutes; ``0s`` turns it off) in a thread of its own.

A fold is one statement per rollup, beside writers (a delta committed meanwhile waits for the
next fold). A transaction-level advisory lock keeps the processes of a server, and several
servers on one database, from folding at the same time: the others skip their turn. A failed
fold (the database restarting, say) is logged and tried again at the next turn. SQLite keeps
no deltas (one writer at a time: the hour rows are updated in place).

Each turn then writes the durations report's digests of the hours that have ended
(:func:`fold_digests`, :mod:`swarm_director.models.attempt_digest`), on both dialects, a
day of hours per transaction.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select

from swarm_director.db.base import utcnow
from swarm_director.db.engine import READ_ONLY
from swarm_director.models.attempt_digest import digest_hours, hours_to_digest
from swarm_director.models.rollup import compact

_log = logging.getLogger(__name__)

#: Key of the fold's transaction-level advisory lock (arbitrary, fixed: "SWFD" in ASCII).
FOLD_LOCK = 0x53574644


def fold_rollups(engine: Engine) -> int | None:
    """Fold every committed delta into the hour tables, in one transaction; the number of
    hour rows changed, or None when another process is folding (its turn is skipped)."""
    with engine.begin() as connection:
        if not _locked(connection):
            return None
        return compact(connection)


#: Hours digested per transaction (a day: on SQLite the transaction holds the write lock, for
#: about 0.1-0.3 s at a million attempts a month), and transactions per :func:`fold_digests`
#: at most (a backlog, after an upgrade, takes a few turns).
DIGEST_BATCH = 24
DIGEST_BATCHES = 100


def fold_digests(
    engine: Engine, now: datetime | None = None, batches: int = DIGEST_BATCHES
) -> int | None:
    """Write the digests of the ended hours that lack one that holds (the latest first, at
    most ``batches`` times :data:`DIGEST_BATCH`), :data:`DIGEST_BATCH` hours per transaction;
    the number of hours written, or None when another process is folding.

    PostgreSQL reads each batch in a REPEATABLE READ transaction: the attempts it digests and
    the marks it deletes are those of one snapshot. SQLite's transaction holds the write lock
    from its start (``BEGIN IMMEDIATE``), so no change comes in between."""
    now = now or utcnow()
    # The hours are listed once (the marks of a month of changes can be millions of rows),
    # in a read that takes no write lock on SQLite, then each batch is digested in a
    # transaction of its own.
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        listed = connection.execute(hours_to_digest(now, DIGEST_BATCH * batches)).scalars()
        hours = [int(hour) for hour in listed]
    written = 0
    for start in range(0, len(hours), DIGEST_BATCH):
        connection = engine.connect()
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection, connection.begin():
            if not _locked(connection):
                return None
            written += digest_hours(connection, hours[start : start + DIGEST_BATCH])
    return written


def _locked(connection: Connection) -> bool:
    """Take the fold's advisory lock for the transaction (PostgreSQL); False when another
    process holds it. SQLite needs none: its writers take turns."""
    if connection.dialect.name != "postgresql":
        return True
    return bool(connection.execute(select(func.pg_try_advisory_xact_lock(FOLD_LOCK))).scalar_one())


class RollupFolder:
    """A daemon thread that calls :func:`fold_rollups` and :func:`fold_digests` every
    ``every_s`` seconds.

    :meth:`ensure_started` starts it in the calling process, once (a forked worker starts its
    own: the thread does not survive a fork); :meth:`stop` ends it within a second.
    """

    def __init__(self, engine: Engine, every_s: float) -> None:
        self.engine = engine
        self.every_s = every_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ensure_started(self) -> None:
        """Start the thread unless it runs in this process already (or was stopped)."""
        if self._pid == os.getpid() or self._stop.is_set():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._thread = threading.Thread(target=self._run, name="rollup-fold", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                # SQLite keeps no deltas: a fold would only take the write lock.
                pg = self.engine.dialect.name == "postgresql"
                changed = fold_rollups(self.engine) if pg else 0
                digested = fold_digests(self.engine)
            except Exception:  # the database went away: try again at the next turn
                _log.warning("rollup fold failed; trying again in %gs", self.every_s, exc_info=True)
                continue
            if changed or digested:
                _log.info(
                    "rollup fold: %d hour rows changed, %d hours digested",
                    changed or 0,
                    digested or 0,
                )

    def stop(self) -> None:
        """End the thread (waits for a fold in progress, at most 5 s)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout=5)
