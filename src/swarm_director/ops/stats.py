"""``db stats``: where the bytes are, when maintenance last ran, what is slow, what to do.

Rows and bytes per table and per index come from SQLite's ``dbstat`` virtual table (when the
library has it) or PostgreSQL's ``pg_total_relation_size``/``pg_relation_size``. Suggestions
are plain sentences with the command to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.db.engine import masked_url, sqlite_file
from swarm_director.models import AgentLog, MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.dbinfo import (
    head_revision,
    model_tables,
    reader,
    row_counts,
    schema_revision,
    sqlite_files_size,
    table_of,
)
from swarm_director.ops.timing import load_snapshots

#: Logs older than this are counted for the retention suggestion.
LOG_AGE_HINT = timedelta(days=30)
FREE_LIST_HINT = 0.20
WAL_HINT_BYTES = 64 * 1024 * 1024
BACKUP_HINT = timedelta(days=1)
SLOW_STATEMENT_MS = 100.0


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
    slow_statements: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def collect_stats(
    engine: Engine, *, timings_dir: Path | None = None, now: datetime | None = None
) -> Stats:
    """Gather the statistics of ``engine``'s database (reads only)."""
    now = now or utcnow()
    sqlite_path = sqlite_file(engine.url)
    with reader(engine).connect() as conn:
        counts = row_counts(conn)
        revision = schema_revision(conn)
        if engine.dialect.name == "sqlite":
            sizes, index_sizes = _sqlite_sizes(conn)
            page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
            free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()) * page_size
            stat1 = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).scalar_one()
            analyzed = bool(stat1) or not any(counts.values())
            files = sqlite_files_size(sqlite_path) if sqlite_path else {}
            db_bytes, wal = pages * page_size, files.get("wal_bytes", 0)
        else:
            sizes, index_sizes = _pg_sizes(conn)
            free, wal = None, None
            db_bytes = int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
            )
            analyzed = _pg_analyzed(conn)
        logs = table_of(AgentLog)
        old_logs = 0
        if logs.name in counts:
            old_logs = int(
                conn.execute(
                    sa.select(sa.func.count()).where(logs.c.timestamp < now - LOG_AGE_HINT)
                ).scalar_one()
            )
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
    )
    for table in model_tables():
        if table.name not in counts:
            continue
        stats.tables.append(
            {
                "name": table.name,
                "rows": counts[table.name],
                "bytes": sizes.get(table.name, 0),
                "indexes": index_sizes.get(table.name, {}),
            }
        )
    for op in (
        MaintenanceOperation.BACKUP,
        MaintenanceOperation.OPTIMIZE,
        MaintenanceOperation.CLEANUP,
        MaintenanceOperation.CHECK,
    ):
        when = audit.last_successful(engine, op)
        stats.last[op.value] = when.isoformat() if when else None
    if timings_dir is not None:
        stats.slow_statements = load_snapshots(timings_dir)[:10]
    stats.suggestions = _suggest(stats, now)
    return stats


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


def _pg_sizes(conn: Connection) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    # A partitioned table (agent_logs) holds no data itself: its partitions do. Their bytes
    # and their indexes' bytes are counted under the partitioned table and its index names.
    rows = conn.exec_driver_sql(
        "SELECT r.relname, c.relname, pg_total_relation_size(c.oid), ri.relname, "
        "pg_relation_size(i.oid) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_class r ON r.oid = coalesce(pg_partition_root(c.oid), c.oid) "
        "LEFT JOIN pg_index x ON x.indrelid = c.oid LEFT JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_class ri ON ri.oid = coalesce(pg_partition_root(i.oid), i.oid) "
        "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
    ).all()
    parts: dict[str, dict[str, int]] = {}
    indexes: dict[str, dict[str, int]] = {}
    for table, part, total, index, size in rows:
        parts.setdefault(table, {})[part] = int(total)
        if index is not None:
            named = indexes.setdefault(table, {})
            named[index] = named.get(index, 0) + int(size)
    tables = {table: sum(sizes.values()) for table, sizes in parts.items()}
    return tables, indexes


def _pg_analyzed(conn: Connection) -> bool:
    never = conn.exec_driver_sql(
        "SELECT count(*) FROM pg_stat_user_tables WHERE n_live_tup > 0 "
        "AND last_analyze IS NULL AND last_autoanalyze IS NULL"
    ).scalar_one()
    return int(never) == 0


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
        out.append(
            f"{_count(stats.old_logs)} logs are older than {LOG_AGE_HINT.days} d: run "
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
