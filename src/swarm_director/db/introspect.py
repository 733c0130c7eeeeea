"""Read-only facts about a live database: rows per table and size on disk."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import Base


def existing_tables(conn: Connection) -> list[str]:
    """The model tables that exist in the database, in dependency order."""
    present = set(sa.inspect(conn).get_table_names())
    return [t.name for t in Base.metadata.sorted_tables if t.name in present]


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per model table that exists in the database (missing tables are left out)."""
    counts: dict[str, int] = {}
    for name in existing_tables(conn):
        table = Base.metadata.tables[name]
        counts[name] = int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
    return counts


def database_size(engine: Engine) -> int:
    """Bytes used by the database: the SQLite file plus its WAL, or ``pg_database_size``."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database:
            return 0
        path = Path(database)
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT pg_database_size(current_database())")) or 0)
