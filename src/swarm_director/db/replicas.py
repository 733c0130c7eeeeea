"""Read replicas: which PostgreSQL standby may serve a read, and how far behind each one is.

A monitor thread per process samples the primary's WAL position and every replica's replayed
position every ``check_s`` seconds. Lag is measured against those samples, not against the
standby's last replayed transaction time: a replica that has replayed what the primary had
written at the sample taken at time *t* is at most ``now - t`` behind, and one that has
replayed everything written so far is not behind at all. (The replay timestamp would make an
idle primary look like a lagging standby, and a paused standby with nothing to replay look
fine.) The figure is therefore exact to one ``check_s``.

A replica is used while it is reachable, still in recovery (a promoted standby is a primary of
its own and no longer follows ours) and at most ``max_lag_s`` behind. A read that names a
commit position (read-your-writes) goes to a usable replica that has replayed it, asking the
replicas directly and waiting up to ``wait_s``; else it goes to the primary (the caller's
fallback). A replica whose connection breaks under a request is marked unreachable at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, event, text

from swarm_director.db.engine import statement_reads
from swarm_director.db.reads import ReadPlace
from swarm_director.redact import first_line, masked_url

_log = logging.getLogger(__name__)

#: The replica's replay position and recovery state, positions as bytes from 0/0.
_REPLICA_STATE = text(
    "SELECT pg_is_in_recovery(), "
    "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint, "
    "pg_is_wal_replay_paused()"
)
_REPLAYED = text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")
_PRIMARY_POSITION = text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
#: How long a read-your-writes wait sleeps between two looks at the replicas.
_WAIT_STEP_S = 0.005


@dataclass(frozen=True)
class ReplicaStatus:
    """What the last check found out about one replica."""

    name: str
    """The replica's URL, password masked."""
    reachable: bool = False
    in_recovery: bool = False
    replay_paused: bool = False
    replayed: int | None = None
    """Replayed WAL position (bytes from 0/0)."""
    lag_s: float | None = None
    """At most this many seconds behind the primary (None: unknown)."""
    lag_bytes: int | None = None
    """WAL bytes the primary had written that it had not replayed, at the check."""
    checked_at: float | None = None
    """``time.monotonic()`` of the check (None: never checked)."""
    error: str | None = None
    """Why it could not be checked (one line)."""

    def usable(self, max_lag_s: float) -> bool:
        """Whether it may serve reads."""
        return (
            self.reachable
            and self.in_recovery
            and self.lag_s is not None
            and self.lag_s <= max_lag_s
        )

    def state(self, max_lag_s: float) -> str:
        """One word for people: ``ok``, ``lagging``, ``unreachable``, ``promoted``, ``unknown``."""
        if self.checked_at is None:
            return "unknown"
        if not self.reachable:
            return "unreachable"
        if not self.in_recovery:
            return "promoted"
        return "ok" if self.usable(max_lag_s) else "lagging"


class Replica(ReadPlace):
    """A standby's engine, its read paths and its latest status."""

    def __init__(self, engine: Engine, max_lag_s: float) -> None:
        super().__init__(masked_url(engine.url), engine)
        self.max_lag_s = max_lag_s
        self.status = ReplicaStatus(self.name)

    def usable(self) -> bool:
        return self.status.usable(self.max_lag_s)

    def replayed_now(self) -> int | None:
        """The replayed position, asked now (None when the replica does not answer)."""
        try:
            with self.statements() as connection:
                value = connection.execute(_REPLAYED).scalar_one()
        except Exception as error:
            self.mark_unreachable(error)
            return None
        if value is None:
            return None
        with_position = replace(self.status, replayed=max(int(value), self.status.replayed or 0))
        self.status = with_position
        return int(value)

    def mark_unreachable(self, error: BaseException) -> None:
        self.status = replace(
            self.status, reachable=False, error=first_line(error), checked_at=time.monotonic()
        )


class ReplicaSet:
    """The replicas of one primary, with their lag kept fresh by a monitor thread."""

    def __init__(
        self,
        primary: Engine,
        replicas: Sequence[Engine],
        *,
        max_lag_s: float,
        wait_s: float,
        check_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self._primary_reads = statement_reads(primary)
        self.replicas = [Replica(engine, max_lag_s) for engine in replicas]
        self.max_lag_s = max_lag_s
        self.wait_s = wait_s
        self.check_s = check_s
        self._clock = clock
        # Enough samples to tell any lag up to twice the limit.
        self._samples: deque[tuple[float, int]] = deque(maxlen=int(2 * max_lag_s / check_s) + 4)
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        for replica in self.replicas:
            _watch_disconnects(replica)

    # -- choosing ------------------------------------------------------------------------

    def choose(self, min_position: int | None = None) -> Replica | None:
        """A usable replica (one that has replayed ``min_position`` when given, waiting up to
        ``wait_s`` for one), or None: the primary should serve the read."""
        self._start()
        usable = [r for r in self.replicas if r.usable()]
        if not usable:
            return None
        start = next(self._turn) % len(usable)
        ordered = usable[start:] + usable[:start]
        if min_position is None:
            return ordered[0]
        for replica in ordered:
            if (replica.status.replayed or 0) >= min_position:
                return replica
        deadline = self._clock() + self.wait_s
        while True:
            for replica in ordered:
                replayed = replica.replayed_now()
                if replayed is not None and replayed >= min_position:
                    return replica
            left = deadline - self._clock()
            if left <= 0:
                return None
            time.sleep(min(_WAIT_STEP_S, left))

    # -- measuring -----------------------------------------------------------------------

    def statuses(self) -> list[ReplicaStatus]:
        """The latest status of every replica (checked now when never checked)."""
        if any(r.status.checked_at is None for r in self.replicas):
            self.check()
        return [replica.status for replica in self.replicas]

    def check(self) -> None:
        """Measure every replica now (the monitor does this every ``check_s``)."""
        with self._lock:
            now = self._clock()
            try:
                with self._primary_reads.connect() as connection:
                    position = int(connection.execute(_PRIMARY_POSITION).scalar_one())
            except Exception:
                _log.warning("replica check: the primary does not answer", exc_info=True)
                position = None
            if position is not None:
                self._samples.append((now, position))
            for replica in self.replicas:
                replica.status = self._measure(replica, now, position)

    def _measure(self, replica: Replica, now: float, position: int | None) -> ReplicaStatus:
        try:
            with replica.statements() as connection:
                row = connection.execute(_REPLICA_STATE).one()
        except Exception as error:
            return ReplicaStatus(replica.name, checked_at=now, error=first_line(error))
        in_recovery, replayed, paused = bool(row[0]), row[1], bool(row[2])
        replayed = None if replayed is None else int(replayed)
        return ReplicaStatus(
            replica.name,
            reachable=True,
            in_recovery=in_recovery,
            replay_paused=paused,
            replayed=replayed,
            lag_s=self._lag(now, replayed) if in_recovery else None,
            lag_bytes=max(0, position - replayed)
            if position is not None and replayed is not None
            else None,
            checked_at=now,
        )

    def _lag(self, now: float, replayed: int | None) -> float | None:
        """At most how far behind a replica that has replayed ``replayed`` is: ``now`` minus
        the time of the newest sample it has caught up with (0 for the newest)."""
        if replayed is None or not self._samples:
            return None
        _, newest_position = self._samples[-1]
        if replayed >= newest_position:
            return 0.0
        for when, position in reversed(self._samples):
            if replayed >= position:
                return now - when
        return now - self._samples[0][0]  # behind every sample: at least this

    # -- the monitor ---------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="replica-monitor", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # never let the monitor die: reads would stay on stale facts
                _log.warning("replica check failed", exc_info=True)
            self._stop.wait(self.check_s)

    def close(self) -> None:
        """Stop the monitor and close the replicas' connections."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
        for replica in self.replicas:
            replica.engine.dispose()


def _watch_disconnects(replica: Replica) -> None:
    """Take a replica out of use as soon as a request loses its connection to it."""

    @event.listens_for(replica.engine, "handle_error")
    def _on_error(context: Any) -> None:
        if context.is_disconnect:
            replica.mark_unreachable(context.original_exception)
