"""Deleting the chosen logs in short transactions, so writers wait about one batch at most.

Either by the ids an archive holds (:func:`delete_ids`: a row not archived is never deleted)
or, without an archive, by the policy's ``WHERE`` clause a batch at a time
(:func:`delete_matching`). Any failure stops the run and raises with how far it got.
"""

from __future__ import annotations

import time
from array import array

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.models import AgentLog
from swarm_director.ops.dbinfo import table_of
from swarm_director.ops.errors import RetentionError
from swarm_director.ops.progress import Reporter, stage
from swarm_director.ops.retention.cleanup_report import CleanupReport
from swarm_director.redact import first_line

LOGS = table_of(AgentLog)
DEFAULT_BATCH = 2000
#: Pause between SQLite delete batches (see :func:`run_batch`).
SQLITE_YIELD_S = 0.1


def delete_ids(
    engine: Engine,
    ids: array[int],
    report: CleanupReport,
    batch_size: int,
    reporter: Reporter | None,
) -> None:
    """Delete the rows of ``ids`` (archived ones), ``batch_size`` per transaction."""
    progress = stage(reporter, "delete")
    for start in range(0, len(ids), batch_size):
        batch = list(ids[start : start + batch_size])
        deleted = run_batch(engine, sa.delete(LOGS).where(LOGS.c.id.in_(batch)), report)
        report.vanished += len(batch) - deleted
        if progress:
            progress(min(start + batch_size, len(ids)), len(ids))


def delete_matching(
    engine: Engine,
    where: sa.ColumnElement[bool],
    report: CleanupReport,
    batch_size: int,
    reporter: Reporter | None,
) -> None:
    """Delete the rows ``where`` chooses, ``batch_size`` per transaction, until none is left."""
    progress = stage(reporter, "delete")
    total = report.total_matched
    chosen = sa.select(LOGS.c.id).where(where).limit(batch_size).scalar_subquery()
    statement = sa.delete(LOGS).where(LOGS.c.id.in_(chosen))
    while run_batch(engine, statement, report):
        if progress:
            progress(min(report.deleted, total), max(total, report.deleted))


def run_batch(engine: Engine, statement: sa.Delete, report: CleanupReport) -> int:
    """One short delete transaction; returns the rows it deleted."""
    began = time.perf_counter()
    try:
        with engine.begin() as conn:
            deleted = conn.execute(statement).rowcount
    except Exception as error:  # any failure ends the run loudly, with how far it got
        text = first_line(error, fallback=repr(error))
        raise RetentionError(
            f"cleanup stopped after deleting {report.deleted} of {report.total_matched} "
            f"rows: {text}"
            + (f" (all archived rows are in {report.archive})" if report.archive else "")
        ) from None
    if engine.dialect.name == "sqlite":
        # Checkpoint as we go (PASSIVE: never waits, never blocks writers), so the WAL stays
        # small: otherwise the writer that happens to cross the auto-checkpoint threshold, or
        # the final truncating checkpoint, pays for copying everything deleted so far.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        # SQLite's lock is not a queue: a waiting writer polls (every 100 ms once it has
        # waited a while) and back-to-back batches could starve it. A gap as long as that poll
        # interval lets every waiting writer in between two batches.
        time.sleep(SQLITE_YIELD_S)
    report.batches += 1
    report.deleted += deleted
    report.longest_batch_s = max(report.longest_batch_s, time.perf_counter() - began)
    return int(deleted)
