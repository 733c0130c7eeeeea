"""Monthly range partitions of a PostgreSQL table: names, bounds, the catalog, and their DDL.

On PostgreSQL ``agent_logs`` is partitioned by month of ``timestamp`` (migration
``008_partition_agent_logs``); SQLite keeps one table. A model declares this with
``info={PARTITION_BY: "<column>"}`` on its table, the one place the drift check, the
migration and the operations read it from.

Each month lives in ``<table>_pYYYY_MM`` (bounds in UTC, lower inclusive, upper exclusive);
``<table>_default`` takes rows of any month that has no partition yet, so an insert is never
refused for its timestamp. :func:`ensure_partitions` creates missing months (``db maintain``
does it ahead of time) and moves the rows of that month out of the default partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Connection

#: Key in ``Table.info``: the column the table is range-partitioned by on PostgreSQL.
PARTITION_BY = "partition_by"
#: Months created ahead of the current one, by the migration and by ``db maintain``.
DEFAULT_MONTHS_AHEAD = 3


@dataclass(frozen=True)
class Partition:
    """One partition: a month ``[lower, upper)``, or the default one (no bounds)."""

    name: str
    lower: datetime | None
    upper: datetime | None

    @property
    def is_default(self) -> bool:
        return self.lower is None and self.upper is None


def month_start(value: datetime) -> datetime:
    """The first instant (UTC) of the month holding ``value`` (naive values are UTC)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(month: datetime, count: int) -> datetime:
    """``month`` (a month start) moved by ``count`` months."""
    index = month.year * 12 + month.month - 1 + count
    return month.replace(year=index // 12, month=index % 12 + 1)


def partition_name(table: str, month: datetime) -> str:
    """``agent_logs_p2026_01`` for January 2026."""
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def default_partition_name(table: str) -> str:
    """The partition that takes rows of months without their own."""
    return f"{table}_default"


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _literal(value: datetime) -> str:
    # Bounds cannot be bound parameters in DDL; they are datetimes computed here, never text
    # from a user, rendered in ISO format with their UTC offset.
    return f"'{value.isoformat()}'"


def partition_key(conn: Connection, table: str) -> str | None:
    """The column ``table`` is range-partitioned by, or None (plain table, or not PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return None
    query = sa.text(
        "SELECT a.attname FROM pg_partitioned_table p "
        "JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
        "WHERE c.relname = :table AND c.relnamespace = current_schema()::regnamespace "
        "AND p.partstrat = 'r' AND p.partnatts = 1"
    )
    name = conn.execute(query, {"table": table}).scalar()
    return None if name is None else str(name)


def partition_names(conn: Connection) -> set[str]:
    """Names of every table of the current schema that is a partition of another."""
    if conn.dialect.name != "postgresql":
        return set()
    query = sa.text(
        "SELECT relname FROM pg_class WHERE relispartition "
        "AND relnamespace = current_schema()::regnamespace"
    )
    return {str(name) for name in conn.execute(query).scalars()}


def list_partitions(conn: Connection, table: str) -> list[Partition]:
    """The partitions of ``table``, oldest first, the default one last."""
    # The bounds come back as text in the session's time zone; the casts read them back
    # as timestamptz on the server, so no client-side parsing of PostgreSQL's formats.
    query = sa.text(
        "SELECT c.relname, "
        "(regexp_match(pg_get_expr(c.relpartbound, c.oid), $$FROM \\('([^']*)'\\)$$))[1]"
        "::timestamptz, "
        "(regexp_match(pg_get_expr(c.relpartbound, c.oid), $$TO \\('([^']*)'\\)$$))[1]"
        "::timestamptz "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :table AND p.relnamespace = current_schema()::regnamespace "
        "ORDER BY 2 NULLS LAST, 1"
    )
    return [
        Partition(str(name), lower, upper)
        for name, lower, upper in conn.execute(query, {"table": table})
    ]


def ensure_default_partition(conn: Connection, table: str) -> bool:
    """Create ``table``'s default partition if missing; True if it was created."""
    name = default_partition_name(table)
    if any(p.name == name for p in list_partitions(conn, table)):
        return False
    conn.exec_driver_sql(
        f"CREATE TABLE {_quote(conn, name)} PARTITION OF {_quote(conn, table)} DEFAULT"
    )
    return True


def ensure_partitions(conn: Connection, table: str, months: Iterable[datetime]) -> list[str]:
    """Create the monthly partitions of ``table`` that cover ``months`` and do not exist yet.

    Rows of such a month already in the default partition are moved into the new one (in the
    caller's transaction, with the default partition locked against inserts meanwhile).
    Returns the names created, oldest first.
    """
    column = partition_key(conn, table)
    if column is None:
        return []
    existing = list_partitions(conn, table)
    created: list[str] = []
    for month in sorted({month_start(m) for m in months}):
        if any(p.lower is not None and p.upper is not None and p.lower <= month < p.upper
               for p in existing):  # fmt: skip
            continue
        upper = add_months(month, 1)
        name = partition_name(table, month)
        _create_month(conn, table, column, name, month, upper, existing)
        existing.append(Partition(name, month, upper))
        created.append(name)
    return created


def _create_month(
    conn: Connection,
    table: str,
    column: str,
    name: str,
    lower: datetime,
    upper: datetime,
    existing: list[Partition],
) -> None:
    parent, part = _quote(conn, table), _quote(conn, name)
    bounds = f"FOR VALUES FROM ({_literal(lower)}) TO ({_literal(upper)})"
    default = next((p for p in existing if p.is_default), None)
    strays = False
    if default is not None:
        # Inserts into the default partition wait until this transaction ends, so no row of
        # the month can land there between the move and the attach.
        source = sa.table(default.name, sa.column(column))
        in_month = sa.and_(source.c[column] >= lower, source.c[column] < upper)
        conn.exec_driver_sql(f"LOCK TABLE {_quote(conn, default.name)} IN SHARE ROW EXCLUSIVE MODE")
        strays = bool(conn.execute(sa.select(sa.exists().where(in_month))).scalar())
    if not strays:
        conn.exec_driver_sql(f"CREATE TABLE {part} PARTITION OF {parent} {bounds}")
        return
    conn.exec_driver_sql(
        f"CREATE TABLE {part} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    # LIKE gives the new table the parent's column order, which is every partition's.
    columns = [
        str(c)
        for c in conn.execute(
            sa.text(
                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            ),
            {"t": name},
        ).scalars()
    ]
    source = sa.table(default.name, *(sa.column(c) for c in columns))  # type: ignore[union-attr]
    target = sa.table(name, *(sa.column(c) for c in columns))
    moved = (
        sa.delete(source)
        .where(source.c[column] >= lower, source.c[column] < upper)
        .returning(*source.c)
        .cte("moved")
    )
    conn.execute(sa.insert(target).from_select(columns, sa.select(*moved.c)))
    conn.exec_driver_sql(f"ALTER TABLE {parent} ATTACH PARTITION {part} {bounds}")


def relation_bytes(conn: Connection, table: str) -> int:
    """PostgreSQL: bytes of ``table`` with its indexes and TOAST, all partitions included."""
    query = sa.text(
        "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
        "FROM pg_partition_tree(CAST(:table AS regclass))"
    )
    return int(conn.execute(query, {"table": table}).scalar_one())
