"""Whether the full-text indexes hold exactly the rows of their tables (part of ``db check``).

SQLite: each FTS5 table's ``_docsize`` shadow table has one row per indexed document, keyed by
the row's id; the ids of the table and of the index must be the same set, compared both ways
in plain reads. (FTS5's own ``'integrity-check'`` command compares every token too, but it is
an ``INSERT`` and would hold the write lock for the whole scan; a table whose triggers are
missing, the one way tokens could go stale, is reported by ``db validate-schema``.)

PostgreSQL: an index on an expression is maintained by the server with the row itself, so it
cannot lose rows; what can go wrong is an index that is missing, or invalid (a failed
``CREATE INDEX CONCURRENTLY``, a corrupt index marked so), which is checked here.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import Connection

from swarm_director.models.fulltext import SOURCES, FullTextSource

#: One finding: (table, row id or None, message).
Finding = tuple[str, int | None, str]


def search_index_findings(conn: Connection) -> Iterator[Finding]:
    """What is wrong with the full-text indexes of the searchable tables present."""
    present = set(sa.inspect(conn).get_table_names())
    sources = [s for s in SOURCES if s.name in present]
    if conn.dialect.name == "sqlite":
        for source in sources:
            yield from _sqlite_findings(conn, source, present)
    else:
        yield from _pg_findings(conn, sources)


def _sqlite_findings(
    conn: Connection, source: FullTextSource, present: set[str]
) -> Iterator[Finding]:
    docsize = f"{source.fts_table}_docsize"
    if source.fts_table not in present or docsize not in present:
        yield source.name, None, f"full-text table {source.fts_table} is missing"
        return
    quote = conn.dialect.identifier_preparer.quote
    table, index = quote(source.name), quote(docsize)
    missing = f"SELECT id FROM {table} EXCEPT SELECT id FROM {index} ORDER BY 1"  # noqa: S608
    for (row_id,) in conn.exec_driver_sql(missing):
        yield source.name, row_id, f"row is missing from the search index {source.fts_table}"
    extra = f"SELECT id FROM {index} EXCEPT SELECT id FROM {table} ORDER BY 1"  # noqa: S608
    for (row_id,) in conn.exec_driver_sql(extra):
        yield (
            source.name,
            row_id,
            f"the search index {source.fts_table} holds a row the table does not have",
        )


def _pg_findings(conn: Connection, sources: list[FullTextSource]) -> Iterator[Finding]:
    query = sa.text(
        "SELECT c.relname, i.indisvalid AND i.indisready FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = ANY(:names) AND pg_table_is_visible(c.oid)"
    )
    names = [s.pg_index for s in sources]
    found = {str(name): bool(ok) for name, ok in conn.execute(query, {"names": names})}
    for source in sources:
        if source.pg_index not in found:
            yield source.name, None, f"full-text index {source.pg_index} is missing"
        elif not found[source.pg_index]:
            yield (
                source.name,
                None,
                f"full-text index {source.pg_index} is invalid: REINDEX INDEX {source.pg_index}",
            )
