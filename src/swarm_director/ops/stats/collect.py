"""``db stats``: where the bytes are, when maintenance last ran, what is slow, what to do.

Cheap by default, because ``/api/admin/stats`` runs it per request: rows per table are the
engine's estimates (:func:`~swarm_director.ops.dbinfo.estimated_row_counts`, labelled as
such), logs older than 30 days are counted only up to :data:`OLD_LOGS_CAP`, and SQLite's
per-table sizes (the ``dbstat`` virtual table, which reads every page) are left out: the file
size is ``page_count * page_size``. PostgreSQL's per-table sizes come from
``pg_total_relation_size``/``pg_relation_size`` (file sizes, no scan) either way. With
``exact=True`` (``db stats --exact``) rows and old logs are counted and SQLite's ``dbstat``
is read. Slow statements come from the ``statement_timings`` table every server process
flushes into (:mod:`swarm_director.ops.stats.timings`), plus ``pg_stat_statements`` where it works.
Suggestions are plain sentences with the command to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.db.engine import sqlite_file
from swarm_director.models import AgentLog, MaintenanceEvent, MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.dbinfo import (
    PgFacts,
    RowCount,
    estimated_row_counts,
    existing_tables,
    head_revision,
    model_tables,
    pg_facts,
    reader,
    row_counts,
    schema_revision,
    sqlite_files_size,
    table_of,
)
from swarm_director.ops.stats import timings_table
from swarm_director.redact import masked_url

#: Logs older than this are counted for the retention suggestion.
LOG_AGE_HINT = timedelta(days=30)
FREE_LIST_HINT = 0.20
WAL_HINT_BYTES = 64 * 1024 * 1024
BACKUP_HINT = timedelta(days=1)
SLOW_STATEMENT_MS = 100.0
#: Without ``exact``, old logs are counted up to this many (an index range of at most this).
OLD_LOGS_CAP = 1_000


@dataclass
class Stats:
    """Everything ``db stats`` shows."""

    url: str
    dialect: str
    revision: str | None
    head: str | None
    database_bytes: int
    wal_bytes: int | None
    free_bytes: int | None
    tables: list[dict[str, Any]] = field(default_factory=list)
    last: dict[str, str | None] = field(default_factory=dict)
    analyzed: bool = True
    old_logs: int = 0
    old_logs_capped: bool = False
    """True when there are at least ``old_logs`` (the count stopped at the cap)."""
    exact: bool = False
    """True when rows were counted (``--exact``); else they are the engine's estimates."""
    slow_statements: list[dict[str, Any]] = field(default_factory=list)
    server_statements: list[dict[str, Any]] = field(default_factory=list)
    server_statements_note: str = ""
    suggestions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def collect_stats(
    engine: Engine,
    *,
    exact: bool = False,
    server_statements: bool = False,
    now: datetime | None = None,
) -> Stats:
    """Gather the statistics of ``engine``'s database (reads only).

    Without ``exact`` nothing scans a table: see the module docstring for what is estimated.
    ``server_statements`` adds PostgreSQL's ``pg_stat_statements`` where it works.
    """
    now = now or utcnow()
    sqlite_path = sqlite_file(engine.url)
    with reader(engine).connect() as conn:
        if engine.dialect.name == "sqlite":
            present = existing_tables(conn)
            counts = _counts(conn, exact, present)
            sizes, index_sizes = _sqlite_sizes(conn) if exact else ({}, {})
            page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
            free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()) * page_size
            stat1 = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).scalar_one()
            analyzed = bool(stat1) or not any(c.rows for c in counts.values())
            files = sqlite_files_size(sqlite_path) if sqlite_path else {}
            db_bytes, wal = pages * page_size, files.get("wal_bytes", 0)
        else:
            facts = pg_facts(conn)
            present = set(facts.tables)
            counts = _counts(conn, exact, present, facts)
            sizes = {name: table.bytes for name, table in facts.tables.items()}
            index_sizes = {name: table.indexes for name, table in facts.tables.items()}
            free, wal, db_bytes = None, None, facts.database_bytes
            analyzed = all(table.analyzed for table in facts.tables.values())
        revision = schema_revision(conn, present)
        old_logs, capped = 0, False
        if table_of(AgentLog).name in counts:
            old_logs, capped = _old_logs(conn, now - LOG_AGE_HINT, None if exact else OLD_LOGS_CAP)
        slow = timings_table.slowest(conn, present=present)
        server, note = timings_table.server_statements(conn) if server_statements else ([], "")
        last = _last_successful(conn, present)
    stats = Stats(
        url=masked_url(engine.url),
        dialect=engine.dialect.name,
        revision=revision,
        head=head_revision(),
        database_bytes=db_bytes,
        wal_bytes=wal,
        free_bytes=free,
        analyzed=analyzed,
        old_logs=old_logs,
        old_logs_capped=capped,
        exact=exact,
        slow_statements=slow,
        server_statements=server,
        server_statements_note=note,
    )
    measured = exact or engine.dialect.name != "sqlite"
    for table in model_tables():
        if table.name not in counts:
            continue
        stats.tables.append(
            {
                "name": table.name,
                "rows": counts[table.name].rows,
                "rows_estimated": counts[table.name].estimated,
                "bytes": sizes.get(table.name, 0) if measured else None,
                "indexes": index_sizes.get(table.name, {}),
            }
        )
    stats.last = {op.value: when.isoformat() if when else None for op, when in last.items()}
    stats.suggestions = _suggest(stats, now)
    return stats


def _counts(
    conn: Connection, exact: bool, present: set[str], facts: PgFacts | None = None
) -> dict[str, RowCount]:
    if exact:
        return {name: RowCount(rows, estimated=False) for name, rows in row_counts(conn).items()}
    if facts is not None:
        return {
            t.name: RowCount(facts.tables[t.name].rows, estimated=True)
            for t in model_tables()
            if t.name in facts.tables
        }
    return estimated_row_counts(conn, present)


_SHOWN_OPERATIONS = (
    MaintenanceOperation.BACKUP,
    MaintenanceOperation.OPTIMIZE,
    MaintenanceOperation.CLEANUP,
    MaintenanceOperation.CHECK,
)


def _last_successful(conn: Connection, present: set[str]) -> dict[MaintenanceOperation, Any]:
    if table_of(MaintenanceEvent).name not in present:
        return dict.fromkeys(_SHOWN_OPERATIONS)
    return audit.last_successful_each(conn, _SHOWN_OPERATIONS)


def _old_logs(conn: Connection, before: datetime, cap: int | None) -> tuple[int, bool]:
    """Logs older than ``before``: exact, or counted up to ``cap`` (then "at least cap")."""
    logs = table_of(AgentLog)
    old = sa.select(sa.literal(1)).where(logs.c.timestamp < before)
    if cap is not None:
        old = old.limit(cap)
    found = int(conn.execute(sa.select(sa.func.count()).select_from(old.subquery())).scalar_one())
    return found, cap is not None and found >= cap


def _sqlite_sizes(conn: Connection) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    owners: dict[str, str] = dict(
        conn.exec_driver_sql(
            "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"
        ).all()
    )
    try:
        rows = conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all()
    except sa.exc.OperationalError:  # SQLite built without dbstat
        return {}, {}
    tables: dict[str, int] = {}
    indexes: dict[str, dict[str, int]] = {}
    for name, size in rows:
        owner = owners.get(name, name)
        tables[owner] = tables.get(owner, 0) + int(size)  # table bytes include its indexes
        if owner != name:
            indexes.setdefault(owner, {})[name] = int(size)
    return tables, indexes


def _suggest(stats: Stats, now: datetime) -> list[str]:
    out: list[str] = []
    if stats.head is not None and stats.revision != stats.head:
        out.append(
            f"Schema is at {stats.revision or 'no revision'}, head is {stats.head}: "
            "run `swarm-director db upgrade`."
        )
    last_backup = stats.last.get("backup")
    if last_backup is None:
        out.append("No successful backup recorded: run `swarm-director db backup`.")
    elif now - datetime.fromisoformat(last_backup) > BACKUP_HINT:
        out.append(
            f"Last backup was {last_backup[:16]}Z: schedule `swarm-director db maintain` daily."
        )
    if stats.old_logs:
        at_least = "At least " if stats.old_logs_capped else ""
        out.append(
            f"{at_least}{_count(stats.old_logs)} logs are older than {LOG_AGE_HINT.days} d: run "
            f"`swarm-director db cleanup-logs --older-than {LOG_AGE_HINT.days}d --archive FILE`."
        )
    if (
        stats.free_bytes
        and stats.database_bytes
        and (stats.free_bytes / stats.database_bytes >= FREE_LIST_HINT)
    ):
        share = stats.free_bytes / stats.database_bytes
        out.append(f"Free list is {share:.0%} of the file: run `swarm-director db optimize`.")
    if stats.wal_bytes and stats.wal_bytes > WAL_HINT_BYTES:
        out.append(
            f"WAL is {stats.wal_bytes / 2**20:.0f} MiB (a long reader stops checkpoints?): "
            "run `swarm-director db optimize`."
        )
    if not stats.analyzed:
        out.append("Tables were never analyzed: run `swarm-director db optimize`.")
    for slow in stats.slow_statements[:3]:
        if slow["max_ms"] >= SLOW_STATEMENT_MS:
            out.append(
                f"Slow statement ({slow['max_ms']:.0f} ms worst, {slow['count']} runs): "
                f"{slow['shape'][:120]} — check its index with EXPLAIN."
            )
    return out


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1_000_000 else f"{n:,}"
