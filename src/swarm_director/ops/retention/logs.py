"""``db cleanup-logs``: retention for ``agent_logs`` that never loses a row silently.

Rows are chosen by age (``older_than``, or a per-level ``keep`` such as errors for 90 days)
and optionally by the status of their task. With an archive, every chosen row is first written
to a gzip JSON-lines file that is fsynced and renamed into place *before the first delete*;
deletes then go by the archived ids, so a row that was not archived is never deleted. Deletes
run in batches of ``batch_size`` rows, each in its own short transaction, so concurrent writers
wait at most about one batch (on SQLite, whose lock is not a fair queue, each batch is
followed by a short pause so that waiting writers get their turn). Any failure stops the run
and raises with how far it got.

On PostgreSQL, where ``agent_logs`` is partitioned by month, months whose every row goes are
dropped whole first (see :mod:`.partitions`); the batched deletes then only touch the
month that straddles the cutoff, months holding rows a per-level rule keeps, and the default
partition.

Afterwards space is reclaimed without blocking writers for long: on SQLite the WAL is
checkpointed and, when the file uses incremental auto-vacuum (``db optimize`` switches it on),
free pages are returned to the file system in steps; on PostgreSQL ``VACUUM (ANALYZE)`` makes
the space reusable.
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.db.partitions import Partition, relation_bytes
from swarm_director.durations import parse_duration
from swarm_director.models import AgentLog, LogLevel, MaintenanceOperation, Task, TaskStatus
from swarm_director.ops import audit
from swarm_director.ops.artifact import Reporter, gzip_chunks, publish, stage, write_layers
from swarm_director.ops.crypto import age
from swarm_director.ops.dbinfo import quoted, reader, table_of
from swarm_director.ops.errors import RetentionError
from swarm_director.ops.retention.partitions import DropResult, drop_partitions, plan_drops
from swarm_director.private_files import open_private, private_dir
from swarm_director.redact import first_line

LOGS = table_of(AgentLog)
TASKS = table_of(Task)
DEFAULT_BATCH = 2000
_VACUUM_STEP_PAGES = 2000
#: Pause between SQLite delete batches (see :func:`_run_batch`).
SQLITE_YIELD_S = 0.1


def parse_keep(text: str | None) -> dict[LogLevel, timedelta]:
    """``error=90d,warning=60d`` as {level: duration}."""
    keep: dict[LogLevel, timedelta] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        level, sep, duration = part.partition("=")
        try:
            parsed_level = LogLevel(level.strip().lower())
        except ValueError:
            levels = ", ".join(v.value for v in LogLevel)
            raise RetentionError(f"unknown log level {level.strip()!r} (use {levels})") from None
        if not sep:
            raise RetentionError(f"--keep needs LEVEL=DURATION, got {part.strip()!r}")
        keep[parsed_level] = parse_duration(duration)
    return keep


@dataclass
class RetentionPolicy:
    """Which logs go: older than ``older_than``, except levels with their own ``keep``."""

    older_than: timedelta
    keep: dict[LogLevel, timedelta] = field(default_factory=dict)
    task_statuses: list[TaskStatus] | None = None

    def criteria(self, now: datetime) -> sa.ColumnElement[bool]:
        level = LOGS.c.log_level
        branches = [
            sa.and_(level == lvl, LOGS.c.timestamp < now - age) for lvl, age in self.keep.items()
        ]
        others = LOGS.c.timestamp < now - self.older_than
        if self.keep:
            others = sa.and_(level.not_in(list(self.keep)), others)
        where: sa.ColumnElement[bool] = sa.or_(*branches, others)
        if self.task_statuses:
            finished = sa.select(TASKS.c.id).where(TASKS.c.status.in_(self.task_statuses))
            where = sa.and_(where, LOGS.c.task_id.in_(finished))
        return where

    def keep_cutoffs(self, now: datetime) -> dict[LogLevel, datetime]:
        """{level: the instant before which that level's rows go}."""
        return {level: now - age for level, age in self.keep.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "older_than_s": self.older_than.total_seconds(),
            "keep_s": {k.value: v.total_seconds() for k, v in self.keep.items()},
            "task_status": [s.value for s in self.task_statuses] if self.task_statuses else None,
        }


@dataclass
class CleanupReport:
    """What a cleanup did (or, with ``dry_run``, would do)."""

    dry_run: bool
    matched: dict[str, int] = field(default_factory=dict)
    """Rows chosen, per log level."""
    archived: int = 0
    deleted: int = 0
    vanished: int = 0
    """Archived rows already gone when their batch was deleted (removed by someone else)."""
    dropped_rows: int = 0
    """Of ``deleted``, the rows that went with whole partitions."""
    drop_seconds: float = 0.0
    """How long the transaction that dropped the partitions took."""
    dropped_bytes: int = 0
    """Bytes of the partitions dropped whole (returned to the file system at once)."""
    archive: str | None = None
    partitions: list[str] = field(default_factory=list)
    """PostgreSQL: monthly partitions dropped whole (with ``dry_run``: that would be)."""
    batches: int = 0
    longest_batch_s: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_freed: int = 0
    """Space no longer used by data (returned to the file system or free for reuse)."""
    seconds: float = 0.0

    @property
    def total_matched(self) -> int:
        return sum(self.matched.values())

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["total_matched"] = self.total_matched
        data["seconds"] = round(self.seconds, 3)
        data["longest_batch_s"] = round(self.longest_batch_s, 4)
        return data


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
            report.bytes_before = _used_bytes(engine)
            row_bytes = _average_row_bytes(engine, where) if engine.dialect.name != "sqlite" else 0
            if archive is not None and report.total_matched == 0:
                pass  # nothing to archive or delete: no empty archive file
            elif archive is not None:
                ids = array("q")

                def archive_rows(conn: Connection | None, going: list[Partition]) -> None:
                    ids.extend(
                        _write_archive(
                            engine, where, archive, recipients, report, reporter, conn, going
                        )
                    )

                if drops:
                    _drop(engine, drops, policy, now, report, archive_rows)
                else:
                    archive_rows(None, [])
                _delete_ids(engine, ids, report, batch_size, reporter)
            else:
                if drops:
                    _drop(engine, drops, policy, now, report, None)
                _delete_matching(engine, where, report, batch_size, reporter)
            if engine.dialect.name == "sqlite" or report.deleted > report.dropped_rows:
                _reclaim(engine)  # a dropped partition needs no vacuum: its files are gone
            report.bytes_after = _used_bytes(engine)
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


def _row_json(row: sa.Row[Any]) -> str:
    data = dict(row._mapping)
    for key in ("timestamp", "created_at"):
        if isinstance(data.get(key), datetime):
            data[key] = data[key].isoformat()
    return json.dumps(data, default=str, ensure_ascii=False)


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


def _write_archive(
    engine: Engine,
    where: sa.ColumnElement[bool],
    archive: Path,
    recipients: Sequence[age.Recipient],
    report: CleanupReport,
    reporter: Reporter | None,
    conn: Connection | None = None,
    dropped: list[Partition] | None = None,
) -> array[int]:
    """Write every chosen row to ``archive``; the ids to delete one by one (not those of
    ``dropped`` partitions, which go whole). Reads through ``conn`` when given (the
    transaction that holds the partitions' locks), else through short read transactions."""
    if archive.exists():
        raise RetentionError(f"archive {archive} already exists; choose a new file name")
    private_dir(archive.parent)
    part = archive.with_name(f".part-{archive.name}")
    progress = stage(reporter, "archive")
    total = report.total_matched
    ids: array[int] = array("q")
    going = dropped or []
    archived = 0

    def lines() -> Iterator[bytes]:
        nonlocal archived
        last_id = 0
        while True:
            query = (
                sa.select(LOGS)
                .where(where, LOGS.c.id > last_id)
                .order_by(LOGS.c.id)
                .limit(DEFAULT_BATCH * 5)
            )
            source: AbstractContextManager[Connection] = (
                nullcontext(conn) if conn is not None else reader(engine).connect()
            )
            with source as reading:
                rows = reading.execute(query).all()
            if not rows:
                return
            text = []
            for row in rows:
                text.append(_row_json(row))
                archived += 1
                if not any(p.lower <= row.timestamp < p.upper for p in going):
                    ids.append(row.id)
            yield ("\n".join(text) + "\n").encode("utf-8")
            last_id = rows[-1].id
            if progress:
                progress(archived, max(total, archived))

    try:
        write_archive(part, lines(), recipients)
        publish(part, archive)  # fsync, then the final name: durable before any delete
    finally:
        part.unlink(missing_ok=True)
    report.archived = archived
    report.archive = str(archive)
    return ids


def write_archive(part: Path, lines: Iterator[bytes], recipients: Sequence[age.Recipient]) -> None:
    """``lines`` into gzip, and into age encryption after it when there are recipients."""
    with open_private(part) as sink:
        write_layers(sink, gzip_chunks(lines), recipients=recipients)


def _delete_ids(
    engine: Engine,
    ids: array[int],
    report: CleanupReport,
    batch_size: int,
    reporter: Reporter | None,
) -> None:
    progress = stage(reporter, "delete")
    for start in range(0, len(ids), batch_size):
        batch = list(ids[start : start + batch_size])
        deleted = _run_batch(engine, sa.delete(LOGS).where(LOGS.c.id.in_(batch)), report)
        report.vanished += len(batch) - deleted
        if progress:
            progress(min(start + batch_size, len(ids)), len(ids))


def _delete_matching(
    engine: Engine,
    where: sa.ColumnElement[bool],
    report: CleanupReport,
    batch_size: int,
    reporter: Reporter | None,
) -> None:
    progress = stage(reporter, "delete")
    total = report.total_matched
    chosen = sa.select(LOGS.c.id).where(where).limit(batch_size).scalar_subquery()
    statement = sa.delete(LOGS).where(LOGS.c.id.in_(chosen))
    while _run_batch(engine, statement, report):
        if progress:
            progress(min(report.deleted, total), max(total, report.deleted))


def _run_batch(engine: Engine, statement: sa.Delete, report: CleanupReport) -> int:
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


def _used_bytes(engine: Engine) -> int:
    """SQLite: bytes of pages holding data (not on the free list). PostgreSQL: the logs
    table's total size, all partitions (it shrinks when a partition is dropped, otherwise
    only with VACUUM FULL; space freed by deletes is reused)."""
    with reader(engine).connect() as conn:
        if engine.dialect.name == "sqlite":
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int((pages - free) * size)
        return relation_bytes(conn, LOGS.name)


def _average_row_bytes(engine: Engine, where: sa.ColumnElement[bool]) -> float:
    """PostgreSQL: mean stored size of (up to 1000 of) the chosen rows."""
    sample = sa.select(LOGS).where(where).limit(1000).subquery("l")
    query = sa.select(sa.func.avg(sa.func.pg_column_size(sa.literal_column("l.*"))))
    with reader(engine).connect() as conn:
        value = conn.execute(query.select_from(sample)).scalar()
    return float(value or 0.0)


def checkpoint_wal(conn: sa.Connection) -> None:
    """Copy the WAL into the database and truncate it, blocking writers only briefly.

    A PASSIVE checkpoint first copies what it can while writers carry on; the TRUNCATE that
    follows (which holds the write lock while it runs) then has little left to copy.
    """
    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _reclaim(engine: Engine) -> None:
    """Give freed space back without holding the write lock for long."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 2:  # incremental
                free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
                # Small steps, each its own transaction: writers get the lock in between.
                # (executescript steps the pragma to the end; execute() frees one page only.)
                raw = conn.connection.driver_connection
                assert raw is not None
                for _ in range(free // _VACUUM_STEP_PAGES + 1):
                    raw.executescript(f"PRAGMA incremental_vacuum({_VACUUM_STEP_PAGES:d})")
            checkpoint_wal(conn)
        else:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {quoted(conn, LOGS.name)}")
