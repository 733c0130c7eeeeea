"""``db check``'s storage rules: the schema's tables, the engine's own integrity checks, the
foreign keys, the monthly partitions and the full-text indexes.

SQLite: ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``. PostgreSQL (whose storage
checks itself): an orphan query for every foreign key of the models, which also catches rows
written while triggers were disabled, and the monthly partitions of ``agent_logs`` (a default
partition and the current month's).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Connection

from swarm_director.db.base import utcnow
from swarm_director.db.partitions import PARTITION_BY, list_partitions, month_start, partition_key
from swarm_director.ops.checks.findings import Problem
from swarm_director.ops.checks.search_index import search_index_findings
from swarm_director.ops.dbinfo import existing_tables, model_tables, present_model_tables


def missing_tables(conn: Connection) -> tuple[list[Problem], set[str]]:
    present = existing_tables(conn)
    missing = [
        Problem("schema", t.name, None, "table is missing")
        for t in model_tables()
        if t.name not in present
    ]
    return missing, {t.name for t in model_tables() if t.name in present}


def partitions(conn: Connection) -> Iterable[Problem]:
    """PostgreSQL: a partitioned table has its default partition and this month's."""
    problems = []
    month = month_start(utcnow())
    for table in model_tables():
        if PARTITION_BY not in table.info or partition_key(conn, table.name) is None:
            continue  # not partitioned here: validate-schema reports that as drift
        parts = list_partitions(conn, table.name)
        if not any(p.is_default for p in parts):
            problems.append(
                Problem("partitions", table.name, None, "no default partition: rows of a "
                        "month without its own partition are refused; run db maintain")
            )  # fmt: skip
        if not any(p.lower is not None and p.upper is not None and p.lower <= month < p.upper
                   for p in parts):  # fmt: skip
            problems.append(
                Problem("partitions", table.name, None, f"no partition for {month:%Y-%m}: "
                        "its rows go to the default partition; run db maintain")
            )  # fmt: skip
    return problems


def sqlite_integrity(conn: Connection) -> Iterable[Problem]:
    rows = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if rows == ["ok"]:
        return []
    index_tables: dict[str, str] = dict(
        conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master WHERE type='index'").all()
    )
    problems = []
    for entry in rows:
        line = str(entry).replace("*** in database main ***", "").strip()
        table = None
        row_id = None
        words = line.split()
        # e.g. "row 17 missing from index ix_agent_logs_timestamp_id"
        if len(words) >= 6 and words[0] == "row" and words[2:5] == ["missing", "from", "index"]:
            table = index_tables.get(words[5])
            row_id = int(words[1]) if words[1].isdigit() else None
        problems.append(Problem("integrity", table, row_id, line))
    return problems


def sqlite_foreign_keys(conn: Connection) -> Iterable[Problem]:
    problems = []
    for table, rowid, parent, _fkid in conn.exec_driver_sql("PRAGMA foreign_key_check").all():
        problems.append(
            Problem("foreign_key", table, rowid, f"references a missing row of {parent}")
        )
    return problems


def orphans(conn: Connection) -> Iterable[Problem]:
    tables = present_model_tables(conn)
    present = {table.name for table in tables}
    for table in tables:
        pk = next(iter(table.primary_key.columns))
        for fk in table.foreign_key_constraints:
            parent = fk.referred_table
            if parent.name not in present:
                continue
            pairs = [(el.parent, el.column) for el in fk.elements]
            child_cols = [child for child, _ in pairs]
            child_alias = table.alias("c")
            parent_alias = parent.alias("p")
            match = sa.and_(*(parent_alias.c[p.name] == child_alias.c[c.name] for c, p in pairs))
            query = (
                sa.select(child_alias.c[pk.name], *(child_alias.c[c.name] for c in child_cols))
                .where(*(child_alias.c[c.name].is_not(None) for c in child_cols))
                .where(~sa.exists().where(match))
                .order_by(child_alias.c[pk.name])
            )
            for row in conn.execute(query):
                refs = ", ".join(f"{c.name}={v}" for c, v in zip(child_cols, row[1:], strict=True))
                yield Problem(
                    "foreign_key",
                    table.name,
                    row[0],
                    f"{refs} references a missing {parent.name} row",
                )


def search_indexes(conn: Connection) -> Iterable[Problem]:
    for table, row_id, message in search_index_findings(conn):
        yield Problem("search_index", table, row_id, message)
