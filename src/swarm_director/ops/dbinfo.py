"""Facts about a database that several operations need: tables, row counts, revision, files."""

from __future__ import annotations

import functools
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


def present_model_tables(conn: Connection) -> list[sa.Table]:
    """The model tables that exist in the connected database, parents before children."""
    present = existing_tables(conn)
    return [table for table in model_tables() if table.name in present]


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


def estimated_row_counts(conn: Connection, present: set[str] | None = None) -> dict[str, RowCount]:
    """Rows per model table present in the database, from the engine's statistics: no table
    is scanned, so this costs the same on a million rows as on ten. ``present``: the
    :func:`existing_tables`, if the caller has them already.

    SQLite: ``sqlite_stat1`` (written by ``ANALYZE``, i.e. ``db optimize``); for a table it
    does not cover, ``max(rowid) - min(rowid) + 1`` (two index seeks; too high by the rows
    deleted in between). PostgreSQL: ``pg_class.reltuples`` scaled to the table's current
    pages, as the planner does; for a table never vacuumed or analyzed, the statistics
    system's live-row count. Exact counts: :func:`row_counts`.
    """
    present = existing_tables(conn) if present is None else present
    names = tuple(t.name for t in model_tables() if t.name in present)
    if conn.dialect.name == "sqlite":
        estimates = _sqlite_stat1(conn) if _has_sqlite_stat1(conn) else {}
        missing = tuple(name for name in names if name not in estimates)
        if missing:
            spans = conn.execute(_rowid_spans(missing)).one()
            estimates.update(zip(missing, (int(span or 0) for span in spans), strict=True))
    else:
        estimates = {name: table.rows for name, table in pg_facts(conn).tables.items()}
    return {name: RowCount(max(0, int(estimates.get(name, 0))), estimated=True) for name in names}


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


@functools.cache
def _rowid_spans(names: tuple[str, ...]) -> sa.Select[Any]:
    # max(rowid) - min(rowid) + 1 per table, all in one statement (built once per set of
    # tables). Scalar subqueries, because SQLite answers a lone min() or max() of the rowid
    # with one seek, but both in one SELECT would scan the table.
    tables = Base.metadata.tables
    rowid: sa.ColumnElement[int] = sa.literal_column("rowid", sa.Integer)
    spans = []
    for name in names:
        high = sa.select(sa.func.max(rowid)).select_from(tables[name]).scalar_subquery()
        low = sa.select(sa.func.min(rowid)).select_from(tables[name]).scalar_subquery()
        spans.append(high - low + 1)
    return sa.select(*spans)


@dataclass(frozen=True)
class PgTable:
    """What PostgreSQL's catalog and statistics say about one table, without reading it."""

    rows: int
    """Estimated rows (see :func:`estimated_row_counts`)."""
    bytes: int
    """The table with its indexes and TOAST (``pg_total_relation_size``)."""
    indexes: dict[str, int]
    """Bytes per index (``pg_relation_size``)."""
    analyzed: bool
    """False when the table has rows and was never analyzed (by hand or autovacuum)."""


@dataclass(frozen=True)
class PgFacts:
    """:class:`PgTable` per table of the current schema, and the database's size."""

    tables: dict[str, PgTable]
    database_bytes: int


# One round trip for everything db stats needs from the catalog (a stats call should cost a
# few queries, not one per table or per fact): the statistics functions are called directly,
# the pg_stat_user_tables view computes twenty columns per table.
# A partitioned table (agent_logs) holds no rows itself: its partitions' rows, bytes and index
# bytes are reported under the partitioned table and its index names (pg_partition_root).
_PG_FACTS = sa.text(
    "SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text AS relname, "
    "c.reltuples, c.relpages, "
    "pg_relation_size(c.oid) / current_setting('block_size')::int AS pages, "
    "pg_stat_get_live_tuples(c.oid) AS live, "
    "coalesce(pg_stat_get_last_analyze_time(c.oid), "
    "pg_stat_get_last_autoanalyze_time(c.oid)) IS NOT NULL AS analyzed, "
    "pg_total_relation_size(c.oid) AS total, "
    "(SELECT json_object_agg(coalesce(pg_partition_root(i.oid), i.oid)::regclass::text, "
    "pg_relation_size(i.oid)) FROM pg_index x "
    "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid) AS indexes, "
    "(SELECT pg_database_size(current_database())) AS database "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
)


def pg_facts(conn: Connection) -> PgFacts:
    """Estimated rows, sizes and analyze state of every table, and the database size, in one
    query (PostgreSQL only)."""
    tables: dict[str, PgTable] = {}
    database = 0
    for row in conn.execute(_PG_FACTS):
        database = int(row.database)
        part = PgTable(
            rows=_pg_rows(row.reltuples, row.relpages, row.pages, row.live),
            bytes=int(row.total),
            indexes={str(k).strip('"'): int(v) for k, v in (row.indexes or {}).items()},
            analyzed=bool(row.analyzed) or not row.live,
        )
        name = str(row.relname).strip('"')
        seen = tables.get(name)
        if seen is not None:  # another partition of the same table
            for index, size in seen.indexes.items():
                part.indexes[index] = part.indexes.get(index, 0) + size
            part = PgTable(
                rows=seen.rows + part.rows,
                bytes=seen.bytes + part.bytes,
                indexes=part.indexes,
                analyzed=seen.analyzed and part.analyzed,
            )
        tables[name] = part
    if not tables:
        database = int(
            conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        )
    return PgFacts(tables, database)


def _pg_rows(reltuples: float | None, relpages: int, pages: int, live: int | None) -> int:
    if reltuples is not None and reltuples >= 0 and relpages > 0:
        return round(reltuples / relpages * pages)  # the density at the last analyze
    if reltuples is not None and reltuples >= 0 and pages == 0:
        return 0
    # Never vacuumed or analyzed (-1), or analyzed while empty and grown since.
    return int(live or 0)


def schema_revision(conn: Connection, present: set[str] | None = None) -> str | None:
    """The Alembic revision stamped in the database, or None if it has none (``present``:
    the :func:`existing_tables`, if the caller has them already)."""
    if VERSION_TABLE not in (existing_tables(conn) if present is None else present):
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
