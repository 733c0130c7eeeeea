"""Partition agent_logs by month of timestamp on PostgreSQL (SQLite keeps one table).

Revision ID: 008_partition_agent_logs
Revises: 007_add_full_text_search
Create Date: 2026-12-02

Retention can then drop a month whole (instant, space back at once) instead of deleting
millions of rows. The table is rebuilt: renamed aside, a partitioned table made ``LIKE`` it
(columns, defaults, NOT NULL and CHECK constraints), its rows copied, then every index and
foreign key the old table had is re-created from the catalog's own definitions, so indexes
added by earlier revisions (whatever they are) come along without being listed here. The id
sequence moves to the new table, so ids continue. A partitioned table's primary key must
contain the partition key: it becomes (id, timestamp). Partitions are made for every month
that holds rows and for the next months; a default partition takes any other month.
The downgrade rebuilds a plain table the same way, keeping every row.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

from swarm_director.db.base import utcnow
from swarm_director.db.partitions import (
    DEFAULT_MONTHS_AHEAD,
    add_months,
    ensure_default_partition,
    ensure_partitions,
    month_start,
)

revision = "008_partition_agent_logs"
down_revision: str | None = "007_add_full_text_search"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "agent_logs"
KEY = "timestamp"
PK = "pk_agent_logs"


def _definitions(conn: Connection, table: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(foreign keys as (name, definition), CREATE INDEX statements) of ``table``'s own
    level (for a partitioned table: the parent's, not the clones on its partitions)."""
    fks = [
        (str(name), str(definition))
        for name, definition in conn.execute(
            sa.text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' AND conparentid = 0 "
                "ORDER BY conname"
            ),
            {"t": table},
        )
    ]
    indexes = [
        str(definition)
        for (definition,) in conn.execute(
            sa.text(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary "
                "ORDER BY c.relname"
            ),
            {"t": table},
        )
    ]
    return fks, indexes


def _index_names(conn: Connection, table: str) -> list[str]:
    return [
        str(name)
        for (name,) in conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary"
            ),
            {"t": table},
        )
    ]


def _owned_sequences(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(sequence, column) for every sequence owned by a column of ``table`` (serial ids)."""
    return [
        (str(seq), str(col))
        for seq, col in conn.execute(
            sa.text(
                "SELECT s.relname, a.attname FROM pg_depend d "
                "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                "WHERE d.refobjid = CAST(:t AS regclass) AND d.deptype = 'a'"
            ),
            {"t": table},
        )
    ]


def _rebuild(conn: Connection, *, partitioned: bool) -> None:
    """Replace ``agent_logs`` by a copy of it that is (or is no longer) partitioned."""
    old = f"{TABLE}_{'unpartitioned' if partitioned else 'partitioned'}"
    fks, indexes = _definitions(conn, TABLE)
    sequences = _owned_sequences(conn, TABLE)
    conn.exec_driver_sql(f"ALTER TABLE {TABLE} RENAME TO {old}")
    for name in _index_names(conn, old):  # their names are needed by the new table's indexes
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    conn.exec_driver_sql(f"ALTER TABLE {old} RENAME CONSTRAINT {PK} TO {PK}_old")
    like = (
        f"LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED "
        "INCLUDING STORAGE INCLUDING COMMENTS"
    )
    if partitioned:
        conn.exec_driver_sql(f'CREATE TABLE {TABLE} ({like}) PARTITION BY RANGE ("{KEY}")')
        conn.exec_driver_sql(f'ALTER TABLE {TABLE} ADD CONSTRAINT {PK} PRIMARY KEY (id, "{KEY}")')
        ensure_default_partition(conn, TABLE)
        months = [
            month
            for (month,) in conn.execute(
                sa.select(sa.func.date_trunc("month", sa.func.timezone("UTC", sa.column(KEY))))
                .distinct()
                .select_from(sa.table(old))
            )
        ]
        current = month_start(utcnow())
        ahead = [add_months(current, n) for n in range(DEFAULT_MONTHS_AHEAD + 1)]
        ensure_partitions(conn, TABLE, [*_as_datetimes(months), *ahead])
    else:
        conn.exec_driver_sql(f"CREATE TABLE {TABLE} ({like})")
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} ADD CONSTRAINT {PK} PRIMARY KEY (id)")
    # Stored columns only (a generated one is computed again); names from the catalog, quoted.
    columns = ", ".join(
        f'"{name}"'
        for name in conn.execute(
            sa.text(
                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
            ),
            {"t": old},
        ).scalars()
    )
    conn.exec_driver_sql(
        f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {old} ORDER BY id"  # noqa: S608
    )
    for definition in indexes:  # built once the rows are in: faster than row by row
        conn.exec_driver_sql(definition)
    for name, definition in fks:
        conn.exec_driver_sql(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for sequence, column in sequences:  # else dropping the old table would drop the sequence
        conn.exec_driver_sql(f'ALTER SEQUENCE "{sequence}" OWNED BY {TABLE}."{column}"')
    conn.exec_driver_sql(f"DROP TABLE {old} CASCADE")
    conn.exec_driver_sql(f"ANALYZE {TABLE}")


def _as_datetimes(values: list[datetime]) -> list[datetime]:
    # date_trunc of a naive UTC timestamp: a naive month start, which month_start reads as UTC.
    return [value for value in values if value is not None]


def _is_partitioned(conn: Connection) -> bool:
    relkind = conn.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": TABLE}
    ).scalar_one()
    return str(relkind) == "p"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or _is_partitioned(conn):
        return
    _rebuild(conn, partitioned=True)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or not _is_partitioned(conn):
        return
    _rebuild(conn, partitioned=False)
