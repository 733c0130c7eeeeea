"""Space after a log cleanup: measured before and after, reclaimed without long locks.

On SQLite the WAL is checkpointed and, when the file uses incremental auto-vacuum
(``db optimize`` switches it on), free pages are returned to the file system in steps; on
PostgreSQL ``VACUUM (ANALYZE)`` makes the space reusable (a dropped partition needs neither:
its files are gone).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.partitions import relation_bytes
from swarm_director.models import AgentLog
from swarm_director.ops.dbinfo import quoted, reader, table_of
from swarm_director.ops.optimize import checkpoint_wal

LOGS = table_of(AgentLog)
_VACUUM_STEP_PAGES = 2000


def used_bytes(engine: Engine) -> int:
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


def average_row_bytes(engine: Engine, where: sa.ColumnElement[bool]) -> float:
    """PostgreSQL: mean stored size of (up to 1000 of) the chosen rows."""
    sample = sa.select(LOGS).where(where).limit(1000).subquery("l")
    query = sa.select(sa.func.avg(sa.func.pg_column_size(sa.literal_column("l.*"))))
    with reader(engine).connect() as conn:
        value = conn.execute(query.select_from(sample)).scalar()
    return float(value or 0.0)


def reclaim(engine: Engine) -> None:
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
