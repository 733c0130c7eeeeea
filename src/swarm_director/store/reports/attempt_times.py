"""The durations report: how long the attempts claimed in a range waited and ran (p50 and
p95 per task type) and how often tasks were retried.

An attempt (one row of ``task_attempts``: :mod:`swarm_director.models.attempt`) waited from
when its task was ready: the step before its claim (the task's creation, a retry, a lease
expiry), or that step's ``not_before`` when it was later (a due time, a retry's backoff). It
ran until ``complete``. Percentiles are nearest-rank (the value at rank ⌈p·n⌉), in seconds to
the millisecond.

The range's whole UTC hours that have a digest which holds are read from it
(:mod:`swarm_director.models.attempt_digest`: an ended hour's values, sorted), the rest from
the attempts; numpy finds the ranks in the values of both. ``rollup=False`` reads every
attempt instead, what the tests and the benchmark compare with: PostgreSQL computes the
percentiles (``percentile_disc``), SQLite's are sorted here from the attempts' few columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import Connection, case, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from swarm_director.models.attempt_digest import (
    Digest,
    attempt_rows,
    digests_of,
    hour_runs,
    sorted_unique,
    unpack,
    valid_digests,
)
from swarm_director.models.rollup import hour_start
from swarm_director.schemas.reports import DurationReport, DurationRow, ReportQuery
from swarm_director.store._common import core_connection
from swarm_director.store.driver_reads import pg_binary_rows, sqlite_rows
from swarm_director.store.reports.attempts import attempts
from swarm_director.store.reports.rollups import hours_within
from swarm_director.store.reports.window import Window, resolve


def _rank(p: int, n: Any) -> Any:
    """⌈p·n/100⌉ in integer arithmetic (the same on both dialects)."""
    return (p * n + 99) // 100


def durations(
    source: Session | Connection,
    query: ReportQuery | None = None,
    *,
    window: Window | None = None,
    rollup: bool = True,
) -> DurationReport:
    """Wait and run percentiles and retries per task type, over the attempts claimed in the
    range: the whole hours that have a digest which holds from it, the rest from the
    attempts (``rollup=False``, or no digest in the range: every attempt, what tests and the
    benchmark compare with).
    Raises ValidationError for a bad range."""
    window = window or resolve(query)
    connection = core_connection(source)
    figures = _digested(connection, window.since, window.until) if rollup else None
    if figures is None:
        every = attempts(window.since, window.until).c
        if connection.dialect.name == "postgresql":
            figures = _pg_durations(connection, every)
        else:
            figures = _durations_here(connection, every)
    rows = [
        DurationRow(
            type=kind,
            attempts=n,
            tasks=tasks,
            retries=retries,
            retries_per_task=round(retries / tasks, 3),
            wait_p50_s=_seconds(w50),
            wait_p95_s=_seconds(w95),
            run_p50_s=_seconds(r50),
            run_p95_s=_seconds(r95),
        )
        for kind, n, tasks, retries, (w50, w95), (r50, r95) in figures
    ]
    return DurationReport(range=window.described(), types=rows)


#: The percentiles of the report, as whole percents and as fractions (the same ranks).
_PERCENTS = (50, 95)
_FRACTIONS = tuple(p / 100 for p in _PERCENTS)
#: Per task type (its name): attempts, tasks, retries, wait and run percentiles.
_Figures = list[tuple[str, int, int, int, tuple[Any, ...], tuple[Any, ...]]]


def _pg_durations(connection: Connection, a: Any) -> _Figures:
    """PostgreSQL's ordered-set aggregate: ``percentile_disc(p)`` is the value at rank
    ⌈p·n⌉ of the non-null values, the nearest rank (one sort per column and type, half the
    time of ranking every row with window functions: docs/benchmarks.md, "Attempts")."""
    fractions = postgresql.array([literal(f) for f in _FRACTIONS])
    stmt = (
        select(
            a.type,
            func.count(),
            func.count(a.task_id.distinct()),
            func.sum(case((a.attempt > 1, 1), else_=0)),
            func.percentile_disc(fractions).within_group(a.wait_s),
            func.percentile_disc(fractions).within_group(a.run_s),
        )
        .group_by(a.type)
        .order_by(a.type)
    )
    nothing = (None,) * len(_FRACTIONS)
    return [
        (kind.value, n, tasks, int(retries or 0), tuple(waits or nothing), tuple(runs or nothing))
        for kind, n, tasks, retries, waits, runs in connection.execute(stmt)
    ]


def _durations_here(connection: Connection, a: Any) -> _Figures:
    """SQLite: the attempts' few columns read in one pass with the driver's cursor and ranked
    here. SQLite runs in this process either way, and its window functions took three times
    as long as sorting the values in Python (docs/benchmarks.md, "Attempts")."""
    groups: dict[str, tuple[list[float], list[float], set[int], list[int]]] = {}
    stmt = select(a.type, a.task_id, a.attempt, a.wait_s, a.run_s)
    for batch in sqlite_rows(connection, stmt, 10_000, str):
        for kind, task_id, attempt, wait, run in batch:
            waits, runs, tasks, counts = groups.setdefault(kind, ([], [], set(), [0, 0]))
            counts[0] += 1
            counts[1] += attempt is not None and attempt > 1
            tasks.add(task_id)
            if wait is not None:
                waits.append(wait)
            if run is not None:
                runs.append(run)
    return [
        (kind, n, len(tasks), retries, _nearest_ranks(waits), _nearest_ranks(runs))
        for kind, (waits, runs, tasks, (n, retries)) in sorted(groups.items())
    ]


def _nearest_ranks(values: list[float]) -> tuple[float | None, ...]:
    """The values at ranks ⌈p·n/100⌉ of the sorted ``values`` (None when there are none)."""
    if not values:
        return (None,) * len(_PERCENTS)
    values.sort()
    return tuple(values[_rank(p, len(values)) - 1] for p in _PERCENTS)


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _digested(connection: Connection, since: datetime, until: datetime) -> _Figures | None:
    """The figures from the digests of the range's whole hours that have one that holds, and
    from the attempts of the rest of the range; None when no digest holds there (a range
    under an hour, or none written yet: the raw path is faster for every attempt)."""
    parts: dict[str, list[Digest]] = {}
    span = hours_within(since, until)
    if span is None:
        return None
    digested: set[int] = set()
    held = valid_digests(span.first, span.end)
    if connection.dialect.name == "postgresql":  # the payloads, binary: not as hexadecimal
        found: Iterable[Any] = pg_binary_rows(connection, held)
    else:
        found = connection.execute(held)
    for hour, payload in found:
        digested.add(int(hour))
        for kind, digest in unpack(payload).items():
            parts.setdefault(kind, []).append(digest)
    if not digested:
        return None
    raw = _undigested(since, until, span.first, span.end, digested)
    if raw:
        for kind, digest in digests_of(_rows(connection, attempt_rows(raw))).items():
            parts.setdefault(kind, []).append(digest)
    figures: _Figures = []
    for kind, digests in sorted(parts.items()):
        tasks = sorted_unique(np.concatenate([d.tasks for d in digests])).size
        waits, runs = (
            np.concatenate([getattr(d, name) for d in digests]) for name in ("waits", "runs")
        )
        figures.append(
            (
                kind,
                sum(d.attempts for d in digests),
                tasks,
                sum(d.retries for d in digests),
                _ranked_ms(waits),
                _ranked_ms(runs),
            )
        )
    return figures


def _rows(connection: Connection, stmt: Any) -> Iterable[Any]:
    """The rows of ``stmt``: on SQLite read with the driver's cursor (the rest of a range
    can be many hours while the folds after an upgrade work through the month)."""
    if connection.dialect.name == "sqlite":
        return chain.from_iterable(sqlite_rows(connection, stmt, 10_000, str))
    return connection.execute(stmt)


def _undigested(
    since: datetime, until: datetime, first: int, end: int, digested: set[int]
) -> list[tuple[datetime, datetime]]:
    """The parts of ``[since, until)`` outside the ``digested`` hours of ``[first, end)``, as
    few ranges as they make."""
    ranges = [(hour_start(a), hour_start(b)) for a, b in hour_runs(first, end, digested)]
    if since < hour_start(first):
        ranges.insert(0, (since, hour_start(first)))
    if hour_start(end) < until:
        ranges.append((hour_start(end), until))
    merged: list[tuple[datetime, datetime]] = []
    for start, stop in ranges:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _ranked_ms(values: Any) -> tuple[float | None, ...]:
    """The values (milliseconds) at ranks ⌈p·n/100⌉, in seconds (None when there are none)."""
    if not values.size:
        return (None,) * len(_PERCENTS)
    ranks = [_rank(p, values.size) - 1 for p in _PERCENTS]
    ordered = np.partition(values, ranks)
    return tuple(int(ordered[r]) / 1000 for r in ranks)
