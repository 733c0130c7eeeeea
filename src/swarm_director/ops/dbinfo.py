"""Facts about a database that several operations need: tables, row counts, revision, files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director import models  # noqa: F401  (registers every table on Base.metadata)
from swarm_director.db.base import Base
from swarm_director.db.engine import READ_ONLY, sqlite_file
from swarm_director.errors import SchemaError
from swarm_director.migrations import migrate

#: Alembic's bookkeeping table.
VERSION_TABLE = "alembic_version"


def model_tables() -> list[sa.Table]:
    """The model tables in dependency order (parents before children)."""
    return list(Base.metadata.sorted_tables)


def reader(engine: Engine) -> Engine:
    """``engine`` for reads only: on SQLite a deferred ``BEGIN`` instead of the project's
    ``BEGIN IMMEDIATE``, so long reads never hold the write lock (writers carry on)."""
    return engine.execution_options(**{READ_ONLY: True})


def table_of(model: type[Any]) -> sa.Table:
    """The Core table of a model class."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def existing_tables(conn: Connection) -> set[str]:
    """Names of the tables that exist in the connected database."""
    return set(sa.inspect(conn).get_table_names())


def row_counts(conn: Connection) -> dict[str, int]:
    """Exact rows per model table present in the database, in dependency order."""
    present = existing_tables(conn)
    counts: dict[str, int] = {}
    for table in model_tables():
        if table.name in present:
            query = sa.select(sa.func.count()).select_from(table)
            counts[table.name] = int(conn.execute(query).scalar_one())
    return counts


@dataclass(frozen=True)
class RowCount:
    """Rows of a table, exact or the engine's estimate."""

    rows: int
    estimated: bool


def estimated_row_counts(conn: Connection) -> dict[str, RowCount]:
    """Rows per model table present in the database, from the engine's statistics: no table
    is scanned, so this costs the same on a million rows as on ten.

    SQLite: ``sqlite_stat1`` (written by ``ANALYZE``, i.e. ``db optimize``); for a table it
    does not cover, ``max(rowid) - min(rowid) + 1`` (two index seeks; too high by the rows
    deleted in between). PostgreSQL: ``pg_class.reltuples`` scaled to the table's current
    pages, as the planner does; for a table never vacuumed or analyzed, the statistics
    system's live-row count. Exact counts: :func:`row_counts`.
    """
    present = existing_tables(conn)
    if conn.dialect.name == "sqlite":
        estimates = _sqlite_stat1(conn) if _has_sqlite_stat1(conn) else {}
    else:
        estimates = _pg_estimates(conn)
    counts: dict[str, RowCount] = {}
    for table in model_tables():
        if table.name not in present:
            continue
        rows = estimates.get(table.name)
        if rows is None:  # SQLite without statistics for this table
            rows = _rowid_span(conn, table)
        counts[table.name] = RowCount(max(0, int(rows)), estimated=True)
    return counts


def _has_sqlite_stat1(conn: Connection) -> bool:
    # Not in existing_tables(): the inspector leaves out SQLite's own sqlite_* tables.
    found = conn.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).scalar_one()
    return bool(found)


def _sqlite_stat1(conn: Connection) -> dict[str, int]:
    # One row per index (or one for a table without any): the first number is the rows.
    estimates: dict[str, int] = {}
    for table, stat in conn.exec_driver_sql("SELECT tbl, stat FROM sqlite_stat1").all():
        first = str(stat or "").split(" ", 1)[0]
        if first.isdigit():
            estimates[table] = max(estimates.get(table, 0), int(first))
    return estimates


def _rowid_span(conn: Connection, table: sa.Table) -> int:
    # Two scalar subqueries: SQLite answers a lone min() or max() of the rowid with one seek,
    # but both in one SELECT would scan the table.
    rowid: sa.ColumnElement[int] = sa.literal_column("rowid", sa.Integer)
    high = sa.select(sa.func.max(rowid)).select_from(table).scalar_subquery()
    low = sa.select(sa.func.min(rowid)).select_from(table).scalar_subquery()
    span = conn.execute(sa.select(high - low + 1)).scalar_one()
    return int(span or 0)


def _pg_estimates(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, c.reltuples, c.relpages, "
            "pg_relation_size(c.oid) / current_setting('block_size')::int AS pages, "
            "coalesce(s.n_live_tup, 0) AS live "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
        )
    ).all()
    estimates: dict[str, int] = {}
    for name, reltuples, relpages, pages, live in rows:
        if reltuples is not None and reltuples >= 0 and relpages > 0:
            estimates[name] = round(reltuples / relpages * pages)
        elif reltuples is not None and reltuples >= 0 and pages == 0:
            estimates[name] = 0
        else:  # never vacuumed or analyzed (-1), or analyzed while empty and grown since
            estimates[name] = int(live)
    return estimates


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision stamped in the database, or None if it has none."""
    if VERSION_TABLE not in existing_tables(conn):
        return None
    version = sa.table(VERSION_TABLE, sa.column("version_num"))
    rows = conn.execute(sa.select(version.c.version_num)).scalars().all()
    if len(rows) > 1:
        raise SchemaError(f"database has {len(rows)} Alembic heads: {sorted(rows)}")
    return str(rows[0]) if rows else None


def head_revision() -> str:
    """The migrations' head revision."""
    return migrate.head_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Upgrade ``engine``'s database to head."""
    migrate.upgrade(engine, "head")


def revision_is_known(engine: Engine) -> bool:
    """True if the revision stamped in ``engine``'s database is in this version's history."""
    try:
        migrate.pending_revisions(engine)
    except Exception:  # SchemaError, or Alembic's own "Can't locate revision"
        return False
    return True


def sqlite_files_size(path: Path) -> dict[str, int]:
    """Bytes of the database file and its WAL (0 when absent)."""
    wal = path.with_name(path.name + "-wal")
    return {
        "file_bytes": path.stat().st_size if path.exists() else 0,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
    }


def database_bytes(engine: Engine) -> int:
    """Size of the database: SQLite file plus WAL, or ``pg_database_size``."""
    path = sqlite_file(engine.url)
    if path is not None:
        sizes = sqlite_files_size(path)
        return sizes["file_bytes"] + sizes["wal_bytes"]
    with reader(engine).connect() as conn:
        return int(
            conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        )


def quoted(engine_or_conn: Engine | Connection, name: str) -> str:
    """``name`` quoted by the dialect (names come from the models' metadata, never users)."""
    return engine_or_conn.dialect.identifier_preparer.quote(name)
