"""``db cleanup-logs``: retention for ``agent_logs`` that never loses a row silently.

Rows are chosen by age (``older_than``, or a per-level ``keep`` such as errors for 90 days)
and optionally by the status of their task (:mod:`.policy`). With an archive, every chosen row
is first written to a gzip JSON-lines file that is fsynced and renamed into place *before the
first delete* (:mod:`.archive`); deletes then go by the archived ids, so a row that was not
archived is never deleted. Deletes run in batches of ``batch_size`` rows, each in its own
short transaction, so concurrent writers wait at most about one batch (:mod:`.batched_deletes`;
on SQLite, whose lock is not a fair queue, each batch is followed by a short pause so that
waiting writers get their turn). Any failure stops the run and raises with how far it got.

On PostgreSQL, where ``agent_logs`` is partitioned by month, months whose every row goes are
dropped whole first (see :mod:`.partitions`); the batched deletes then only touch the
month that straddles the cutoff, months holding rows a per-level rule keeps, and the default
partition.

Afterwards space is reclaimed without blocking writers for long (:mod:`.space`).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.db.partitions import Partition
from swarm_director.models import AgentLog, MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.crypto import age
from swarm_director.ops.dbinfo import reader, table_of
from swarm_director.ops.errors import RetentionError
from swarm_director.ops.progress import Reporter
from swarm_director.ops.retention.archive import write_log_archive
from swarm_director.ops.retention.batched_deletes import (
    DEFAULT_BATCH,
    delete_ids,
    delete_matching,
)
from swarm_director.ops.retention.cleanup_report import CleanupReport
from swarm_director.ops.retention.partitions import DropResult, drop_partitions, plan_drops
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.ops.retention.space import average_row_bytes, reclaim, used_bytes

LOGS = table_of(AgentLog)


def cleanup_logs(
    engine: Engine,
    policy: RetentionPolicy,
    *,
    archive: Path | None = None,
    recipients: Sequence[age.Recipient] = (),
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    reporter: Reporter | None = None,
    now: datetime | None = None,
) -> CleanupReport:
    """Apply ``policy`` to ``agent_logs``; see the module docstring for the guarantees.

    With ``recipients`` the archive is encrypted to them in the age format (``.age`` is
    appended to its name unless it ends so already): ``age -d -i key.txt A | gunzip``.
    """
    if archive is not None and recipients and archive.suffix != ".age":
        archive = archive.with_name(archive.name + ".age")
    if batch_size < 1:
        raise RetentionError("batch size must be at least 1")
    now = now or utcnow()
    started = time.perf_counter()
    report = CleanupReport(dry_run=dry_run)
    where = policy.criteria(now)
    report.matched = _count_by_level(engine, where)
    drops: list[Partition] = []
    if policy.task_statuses is None and engine.dialect.name == "postgresql":
        drops = plan_drops(engine, now - policy.older_than, policy.keep_cutoffs(now))
    report.partitions = [part.name for part in drops]
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report
    with audit.record(engine, MaintenanceOperation.CLEANUP) as details:
        details["policy"] = policy.describe()
        details["matched"] = report.total_matched
        try:
            report.bytes_before = used_bytes(engine)
            row_bytes = average_row_bytes(engine, where) if engine.dialect.name != "sqlite" else 0
            if archive is not None and report.total_matched == 0:
                pass  # nothing to archive or delete: no empty archive file
            elif archive is not None:
                ids = array("q")

                def archive_rows(conn: Connection | None, going: list[Partition]) -> None:
                    ids.extend(
                        write_log_archive(
                            engine, where, archive, recipients, report, reporter, conn, going
                        )
                    )

                if drops:
                    _drop(engine, drops, policy, now, report, archive_rows)
                else:
                    archive_rows(None, [])
                delete_ids(engine, ids, report, batch_size, reporter)
            else:
                if drops:
                    _drop(engine, drops, policy, now, report, None)
                delete_matching(engine, where, report, batch_size, reporter)
            if engine.dialect.name == "sqlite" or report.deleted > report.dropped_rows:
                reclaim(engine)  # a dropped partition needs no vacuum: its files are gone
            report.bytes_after = used_bytes(engine)
            if engine.dialect.name == "sqlite":
                report.bytes_freed = max(0, report.bytes_before - report.bytes_after)
            else:  # dropped months exactly; an estimate for rows deleted one by one
                batched = report.deleted - report.dropped_rows
                report.bytes_freed = report.dropped_bytes + int(row_bytes * batched)
        finally:
            details.update(
                partitions=report.partitions,
                deleted=report.deleted,
                archived=report.archived,
                archive=report.archive,
                bytes_freed=report.bytes_freed,
            )
    report.seconds = time.perf_counter() - started
    return report


def _count_by_level(engine: Engine, where: sa.ColumnElement[bool]) -> dict[str, int]:
    level = sa.type_coerce(LOGS.c.log_level, sa.String())
    query = sa.select(level, sa.func.count()).where(where).group_by(level)
    with reader(engine).connect() as conn:
        return {str(lvl): int(n) for lvl, n in conn.execute(query)}


def _drop(
    engine: Engine,
    drops: list[Partition],
    policy: RetentionPolicy,
    now: datetime,
    report: CleanupReport,
    archive: Any,
) -> None:
    try:
        result: DropResult = drop_partitions(
            engine, drops, policy.keep_cutoffs(now), archive=archive
        )
    except sa.exc.DBAPIError as error:
        text = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "error"
        raise RetentionError(
            f"cleanup stopped: could not drop partitions {', '.join(p.name for p in drops)}: "
            f"{text}; nothing was deleted"
            + (f" (the rows in {report.archive} are all still stored)" if report.archive else "")
        ) from None
    report.partitions = result.names
    report.deleted += result.rows
    report.dropped_rows = result.rows
    report.drop_seconds = result.seconds
    report.dropped_bytes = result.bytes
