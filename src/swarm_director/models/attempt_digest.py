"""Each past UTC hour's attempts, kept whole for the durations report: per task type, the
attempts claimed in the hour, their retries, the tasks' ids and the waits and runs in
milliseconds, sorted; and beside them, for the failure rates, the attempts claimed,
completed and failed per type and agent, and the hour's failed steps per error pattern
(:mod:`swarm_director.models.attempt_errors`).

The durations report gives exact nearest-rank percentiles and distinct task counts, which no
count per hour can add up to: over a month of a busy swarm that is a million attempts to read
and sort (1.3-2.3 s, docs/benchmarks.md). A digest holds an hour's values as packed integer
arrays in one row, so the report reads a month as 720 rows and finds the ranks with numpy
(:mod:`swarm_director.store.reports.attempt_times`).

Digests are a cache of ``task_attempts`` joined to ``tasks`` (the attempts of tasks that
exist, under each task's current type), written by the fold (:func:`digest_hours`: the
server's rollup fold, ``db optimize``) for hours that have ended. The report never depends on
them being there: an hour without a digest that holds is read from the attempts. Triggers
(:mod:`swarm_director.models.attempt_digest_ddl`) retire a digest when an attempt of its hour,
the type of one of its tasks or a failed step of the hour changes, so a digest that is read
always says what the rows say. Only hours with claims are digested: an hour with failed
steps and no claim is read from the history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    BigInteger,
    Connection,
    Index,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    and_,
    delete,
    event,
    exists,
    or_,
    select,
    type_coerce,
    union,
)
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.db.ddl import dialect_ddl
from swarm_director.models import attempt_digest_ddl as ddl
from swarm_director.models.attempt import TaskAttempt
from swarm_director.models.attempt_count import DELTAS as COUNT_DELTAS
from swarm_director.models.attempt_count import HOURS as COUNT_HOURS
from swarm_director.models.attempt_count import UNASSIGNED
from swarm_director.models.attempt_count_ddl import FAILED_END_ACTIONS
from swarm_director.models.attempt_errors import dump_tallies, failed_steps, tallies_of
from swarm_director.models.log import BigId
from swarm_director.models.rollup import epoch_hour, hour_start
from swarm_director.models.task import Task


class AttemptDigest(Base):
    """One ended UTC hour's attempts, per task type (:class:`Digest`, packed by
    :func:`pack`)."""

    __tablename__ = ddl.DIGESTS

    epoch_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """Whole hours since 1970-01-01T00:00Z of the claims."""
    counts: Mapped[str] = mapped_column(Text)
    """JSON: per task type and agent id (0: none), the attempts claimed, completed and
    failed (:func:`counts_of`; the failure rates). Before the payload, so that reading it
    leaves the payload's pages alone."""
    errors: Mapped[str] = mapped_column(Text)
    """JSON: the tasks' failed steps of the hour per error pattern, their count and newest
    steps (:mod:`swarm_director.models.attempt_errors`; the most frequent errors). Before the
    payload, as ``counts`` is."""
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class AttemptDigestMark(Base):
    """An hour whose digest a change has made stale (PostgreSQL; see the ddl module)."""

    __tablename__ = ddl.MARKS

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    epoch_hour: Mapped[int] = mapped_column(BigInteger)

    # The report looks up each digest's hour here; the fold deletes by hour.
    __table_args__ = (Index("ix_attempt_digest_marks_epoch_hour", "epoch_hour"),)


DIGESTS = cast(Table, AttemptDigest.__table__)
MARKS = cast(Table, AttemptDigestMark.__table__)


@dataclass
class Digest:
    """Attempts of one task type: how many, how many were retries (attempt > 1), the tasks'
    distinct ids, and the waits and runs (milliseconds) that are known, each sorted."""

    attempts: int = 0
    retries: int = 0
    tasks: Any = field(default_factory=lambda: np.empty(0, np.int64))
    waits: Any = field(default_factory=lambda: np.empty(0, np.int64))
    runs: Any = field(default_factory=lambda: np.empty(0, np.int64))


def digests_of(
    rows: Iterable[tuple[Any, int, int | None, float | None, float | None]],
) -> dict[str, Digest]:
    """Per task type, the :class:`Digest` of attempt rows ``(type, task_id, attempt,
    wait_s, run_s)``. The rows are turned into columns once (numpy arrays, a null as NaN)
    and cut by type there: no Python loop runs per row."""
    listed = rows if isinstance(rows, list) else list(rows)
    if not listed:
        return {}
    # Column by column (zip(*rows) took three times as long for 100,000 rows).
    columns = [list(map(itemgetter(i), listed)) for i in range(5)]
    codes = {kind: code for code, kind in enumerate(set(columns[0]))}
    kinds = np.fromiter(map(codes.__getitem__, columns[0]), np.int32, len(columns[0]))
    tasks = np.array(columns[1], np.int64)
    attempts, waits, runs = (np.array(c, np.float64) for c in columns[2:])
    digests = {}
    for kind, code in codes.items():
        mine = kinds == code
        digests[str(getattr(kind, "value", kind))] = Digest(
            attempts=int(np.count_nonzero(mine)),
            retries=int(np.count_nonzero(attempts[mine] > 1)),
            tasks=sorted_unique(tasks[mine]),
            waits=np.sort(_milliseconds(waits[mine])),
            runs=np.sort(_milliseconds(runs[mine])),
        )
    return digests


def counts_of(rows: Iterable[tuple[Any, ...]]) -> dict[str, dict[str, list[int]]]:
    """Per task type and agent id (text; ``"0"`` for none), ``[claimed, completed, failed]``
    of attempt rows as :func:`attempt_rows` gives them: what ``attempt_count_hours`` counts
    for their hour."""
    counts: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        kind, agent_id, end_action = row[0], row[5], row[6]
        agents = counts.setdefault(str(getattr(kind, "value", kind)), {})
        n = agents.setdefault(str(UNASSIGNED if agent_id is None else int(agent_id)), [0, 0, 0])
        n[0] += 1
        n[1] += end_action == "complete"
        n[2] += end_action in FAILED_END_ACTIONS
    return counts


def dump_counts(counts: dict[str, dict[str, list[int]]]) -> str:
    """The ``counts`` column's text (sorted keys: the same counts, the same text)."""
    return json.dumps(counts, sort_keys=True, separators=(",", ":"))


def sorted_unique(values: Any) -> Any:
    """The distinct ``values``, sorted. A stable sort (radix or merge of runs: task ids come
    nearly in order) takes a few milliseconds for a million, where ``np.unique`` took a
    second on numpy 2's hash path."""
    ordered = np.sort(values, kind="stable")
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _milliseconds(seconds: Any) -> Any:
    """The known values (not NaN) in whole milliseconds: the attempts hold seconds rounded
    to the millisecond, so this is exact."""
    return np.rint(seconds[~np.isnan(seconds)] * 1000).astype(np.int64)


def pack(digests: dict[str, Digest]) -> bytes:
    """A row's payload: the length of a JSON header (4 bytes), the header (per type: name,
    attempts, retries, and each array's length and item size), then the arrays (little-endian
    integers of 4 bytes where every value fits, else 8)."""
    header: list[list[Any]] = []
    arrays: list[bytes] = []
    for kind, digest in sorted(digests.items()):
        entry: list[Any] = [kind, digest.attempts, digest.retries]
        for values in (digest.tasks, digest.waits, digest.runs):
            narrow = values.size == 0 or (values.min() >= -(2**31) and values.max() < 2**31)
            dtype = "<i4" if narrow else "<i8"
            entry += [int(values.size), np.dtype(dtype).itemsize]
            arrays.append(values.astype(dtype).tobytes())
        header.append(entry)
    head = json.dumps(header, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "little") + head + b"".join(arrays)


def unpack(payload: bytes) -> dict[str, Digest]:
    """The digests :func:`pack` packed. Their arrays are read-only views of ``payload``, of
    the integers' stored width (4 or 8 bytes): concatenated with others they widen as needed.
    Copying each to 8 bytes first took a month's 720 payloads 45 ms to unpack, against 24."""
    length = int.from_bytes(payload[:4], "little")
    offset = 4 + length
    digests: dict[str, Digest] = {}
    for kind, attempts, retries, *shapes in json.loads(payload[4:offset]):
        arrays = []
        for size, width in zip(shapes[::2], shapes[1::2], strict=True):
            dtype = np.dtype("<i4" if width == 4 else "<i8")
            arrays.append(np.frombuffer(payload, dtype, size, offset))
            offset += size * width
        digests[kind] = Digest(attempts, retries, *arrays)
    return digests


def attempt_rows(ranges: list[tuple[datetime, datetime]]) -> Select[Any]:
    """``(type, task_id, attempt, wait_s, run_s, agent_id, end_action)`` of each attempt
    claimed in one of the ``[since, until)`` ``ranges`` of a task that exists (its current
    type), what a digest holds."""
    a = TaskAttempt
    within = or_(*(and_(a.claimed_at >= since, a.claimed_at < until) for since, until in ranges))
    # The task's type looked up by primary key for each attempt (a deleted task's: null):
    # a join let PostgreSQL, with statistics that lagged a growing table, hash the whole
    # tasks table for each hour's thousand attempts (35 ms an hour at 100,000 tasks). The
    # type as stored (its value), not converted to the enum row by row.
    kind = select(type_coerce(Task.type, String())).where(Task.id == a.task_id)
    rows = select(
        kind.scalar_subquery().label("type"),
        a.task_id,
        a.attempt,
        a.wait_s,
        a.run_s,
        a.agent_id,
        a.end_action,
    ).where(within)
    inner = rows.subquery("attempts")
    stmt = select(*inner.c).where(inner.c.type.is_not(None))
    return cast("Select[Any]", stmt)


def valid_digests(first: int, end: int, column: str = "payload") -> Select[Any]:
    """``(epoch_hour, column)`` of the digests of hours ``[first, end)`` that hold: no mark
    names their hour (one statement: the digests and marks of one snapshot). ``column``:
    ``payload`` (the durations), ``counts`` (the failure rates) or ``errors`` (the most
    frequent errors)."""
    stale = exists().where(MARKS.c.epoch_hour == DIGESTS.c.epoch_hour)
    return (
        select(DIGESTS.c.epoch_hour, DIGESTS.c[column])
        .where(DIGESTS.c.epoch_hour >= first, DIGESTS.c.epoch_hour < end, ~stale)
        .order_by(DIGESTS.c.epoch_hour)
    )


def hours_to_digest(now: datetime, limit: int) -> Select[Any]:
    """Up to ``limit`` ended hours (before ``now``'s), the latest first, whose digest is
    missing (the hour has counted attempts) or stale (a mark names it)."""
    end = epoch_hour(now)
    counted = union(
        select(COUNT_HOURS.c.epoch_hour).where(COUNT_HOURS.c.epoch_hour < end),
        select(COUNT_DELTAS.c.epoch_hour).where(COUNT_DELTAS.c.epoch_hour < end),
    ).subquery("counted")
    missing = select(counted.c.epoch_hour).where(
        ~exists().where(DIGESTS.c.epoch_hour == counted.c.epoch_hour)
    )
    marked = select(MARKS.c.epoch_hour).where(MARKS.c.epoch_hour < end)
    hours = union(missing, marked).subquery("hours")
    return select(hours.c.epoch_hour).order_by(hours.c.epoch_hour.desc()).limit(limit)


def digest_hours(connection: Connection, hours: list[int]) -> int:
    """Write the digests of ``hours`` (from :func:`hours_to_digest`) and delete their marks,
    in the connection's transaction; returns how many hours it wrote.

    PostgreSQL: run it in a REPEATABLE READ transaction (:func:`fold_digests` does), so that
    the attempts read and the marks deleted are those of one snapshot. SQLite: in a write
    transaction (``BEGIN IMMEDIATE``), so that no writer comes in between."""
    for hour in hours:
        payload, counts, errors = _hour_digest(connection, hour)
        connection.execute(delete(DIGESTS).where(DIGESTS.c.epoch_hour == hour))
        connection.execute(
            DIGESTS.insert().values(epoch_hour=hour, counts=counts, errors=errors, payload=payload)
        )
    if hours:
        connection.execute(delete(MARKS).where(MARKS.c.epoch_hour.in_(hours)))
    return len(hours)


def digests_drift(connection: Connection) -> list[int]:
    """The hours whose digest holds (no mark) but differs from their attempts (empty when
    every digest is exact): ``db check``."""
    drifted = []
    stmt = valid_digests(-(2**62), 2**62).add_columns(DIGESTS.c.counts, DIGESTS.c.errors)
    for hour, payload, counts, errors in connection.execute(stmt):
        if _hour_digest(connection, int(hour)) != (payload, counts, errors):
            drifted.append(int(hour))
    return drifted


def hour_runs(first: int, end: int, digested: set[int]) -> list[tuple[int, int]]:
    """The runs ``[a, b)`` of the hours of ``[first, end)`` not in ``digested``."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for hour in range(first, end):
        if hour in digested:
            if start is not None:
                runs.append((start, hour))
                start = None
        elif start is None:
            start = hour
    if start is not None:
        runs.append((start, end))
    return runs


def _hour_digest(connection: Connection, hour: int) -> tuple[bytes, str, str]:
    """The ``payload``, ``counts`` and ``errors`` of ``hour``'s digest, from its attempts and
    failed steps now."""
    since, until = hour_start(hour), hour_start(hour + 1)
    rows = connection.execute(attempt_rows([(since, until)])).all()
    steps = connection.execute(failed_steps(since, until))
    return pack(digests_of(rows)), dump_counts(counts_of(rows)), dump_tallies(tallies_of(steps))


def forget_digests(connection: Connection) -> None:
    """Drop every digest and mark (``db rebuild-rollups``: the fold writes them again)."""
    connection.execute(delete(MARKS))
    connection.execute(delete(DIGESTS))


# Schemas built from the models (``create_all``) get the triggers too.
for _dialect in ("postgresql", "sqlite"):
    for _statement in ddl.create(_dialect):
        event.listen(Base.metadata, "after_create", dialect_ddl(_statement, _dialect))
