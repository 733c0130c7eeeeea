"""The ``statement_timings`` table: merging a process's counters (:class:`ShapeStats`) in,
reading the list out.

See :mod:`swarm_director.ops.stats.timings` for why the timings live in the database.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from swarm_director.models import StatementTiming
from swarm_director.ops.dbinfo import existing_tables, table_of

TIMINGS = table_of(StatementTiming)
#: ``sources`` stops growing past this many characters (a handful of ``host:pid``).
SOURCES_CHARS = 240


@dataclass
class ShapeStats:
    """Timings of one statement shape."""

    shape: str
    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    last_seen: float = 0.0
    """Unix time of the last execution."""

    def absorb(self, other: ShapeStats) -> None:
        """Add ``other``'s executions (of the same shape) to these."""
        self.count += other.count
        self.total_s += other.total_s
        self.max_s = max(self.max_s, other.max_s)
        self.last_seen = max(self.last_seen, other.last_seen)


def source_name() -> str:
    """``host:pid`` of this process, as it appears in ``sources``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def merge(engine: Engine, shapes: Sequence[ShapeStats], *, keep: int, lock_wait_s: float) -> None:
    """Add ``shapes`` to the table (one UPSERT per shape) and prune it to the ``keep``
    slowest, in one short transaction that waits at most ``lock_wait_s`` for a lock.

    Raises whatever the database raises (busy, missing table); the caller retries later.
    """
    source = source_name()
    rows: list[dict[str, Any]] = sorted(
        (
            {
                "shape_hash": hashlib.sha256(s.shape.encode()).hexdigest(),
                "shape": s.shape,
                "calls": s.count,
                "total_ms": s.total_s * 1000,
                "max_ms": s.max_s * 1000,
                "last_seen": datetime.fromtimestamp(s.last_seen, UTC),
                "sources": source,
            }
            for s in shapes
        ),
        key=lambda row: str(row["shape_hash"]),  # one lock order for every process: no deadlock
    )
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            raw: Any = conn.connection.dbapi_connection  # no transaction begun yet
            previous = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute(f"PRAGMA busy_timeout={int(lock_wait_s * 1000):d}")
            try:
                with conn.begin():
                    _upsert_and_prune(conn, rows, keep)
            finally:
                raw.execute(f"PRAGMA busy_timeout={previous:d}")
        else:
            with conn.begin():
                conn.execute(
                    sa.select(
                        sa.func.set_config("lock_timeout", f"{int(lock_wait_s * 1000)}ms", True)
                    )
                )
                _upsert_and_prune(conn, rows, keep)


def _upsert_and_prune(conn: Connection, rows: list[dict[str, Any]], keep: int) -> None:
    postgres = conn.dialect.name == "postgresql"
    insert = postgresql.insert(TIMINGS) if postgres else sqlite.insert(TIMINGS)
    new = insert.excluded
    greatest = sa.func.greatest if postgres else sa.func.max
    position = sa.func.strpos if postgres else sa.func.instr
    padded = sa.literal(" ") + TIMINGS.c.sources + sa.literal(" ")
    known = position(padded, sa.literal(" ") + new.sources + sa.literal(" ")) > 0
    full = sa.func.length(TIMINGS.c.sources) > SOURCES_CHARS
    upsert = insert.on_conflict_do_update(
        index_elements=[TIMINGS.c.shape_hash],
        set_={
            "calls": TIMINGS.c.calls + new.calls,
            "total_ms": TIMINGS.c.total_ms + new.total_ms,
            "max_ms": greatest(TIMINGS.c.max_ms, new.max_ms),
            "last_seen": greatest(TIMINGS.c.last_seen, new.last_seen),
            "sources": sa.case(
                (sa.or_(known, full), TIMINGS.c.sources),
                else_=TIMINGS.c.sources + sa.literal(" ") + new.sources,
            ),
        },
    )
    conn.execute(upsert, rows)
    slowest = sa.select(TIMINGS.c.shape_hash).order_by(TIMINGS.c.max_ms.desc()).limit(keep)
    conn.execute(sa.delete(TIMINGS).where(TIMINGS.c.shape_hash.not_in(slowest)))


def slowest(
    conn: Connection, limit: int = 10, *, present: set[str] | None = None
) -> list[dict[str, Any]]:
    """The shapes with the worst single execution, worst first, merged over every process
    (empty when the table does not exist yet; ``present``: the tables, if known)."""
    if TIMINGS.name not in (existing_tables(conn) if present is None else present):
        return []
    query = sa.select(TIMINGS).order_by(TIMINGS.c.max_ms.desc()).limit(limit)
    return [
        {
            "shape": row.shape,
            "count": row.calls,
            "total_ms": round(row.total_ms, 3),
            "mean_ms": round(row.total_ms / row.calls, 3) if row.calls else 0.0,
            "max_ms": round(row.max_ms, 3),
            "last_seen": row.last_seen.isoformat(),
            "sources": row.sources.split(),
        }
        for row in conn.execute(query)
    ]


def server_statements(conn: Connection, limit: int = 10) -> tuple[list[dict[str, Any]], str]:
    """PostgreSQL's own ``pg_stat_statements`` view, slowest worst-case first, and a note
    saying why it is empty (not PostgreSQL, extension not installed, or not preloaded)."""
    if conn.dialect.name != "postgresql":
        return [], "pg_stat_statements is PostgreSQL's"
    installed = conn.execute(
        sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
    ).scalar_one()
    if not installed:
        return [], "pg_stat_statements is not installed (CREATE EXTENSION pg_stat_statements)"
    query = sa.text(
        "SELECT query, calls, total_exec_time, mean_exec_time, max_exec_time "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) ORDER BY max_exec_time DESC LIMIT :limit"
    )
    try:
        with conn.begin_nested():  # the error below must not end the caller's transaction
            rows = conn.execute(query, {"limit": limit}).all()
    except sa.exc.DBAPIError:
        return [], "pg_stat_statements is installed but not loaded (shared_preload_libraries)"
    return [
        {
            "shape": row.query,
            "count": int(row.calls),
            "total_ms": round(float(row.total_exec_time), 3),
            "mean_ms": round(float(row.mean_exec_time), 3),
            "max_ms": round(float(row.max_exec_time), 3),
        }
        for row in rows
    ], "from pg_stat_statements"
