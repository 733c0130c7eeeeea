"""Compare the live full-text objects with :mod:`swarm_director.models.fulltext`.

Alembic's comparison knows tables and plain indexes; an FTS5 virtual table with its shadow
tables and triggers, or a GIN expression index, is invisible to it (or mistaken for an extra
table), so :mod:`swarm_director.ops.checks.schema_drift` leaves them out of that comparison and asks
here instead: each object must exist under its name with the definition the models give.
"""

from __future__ import annotations

import functools
import re

from sqlalchemy import Connection

from swarm_director.models.fulltext import SOURCES

# PostgreSQL prints an index back with casts, parentheses, the schema and quoted function
# names added; the comparison keeps what is left without them (and without spaces).
_DECORATION = re.compile(r"::(regconfig|text|character varying)|\bpublic\.|[\"()\s;]")


@functools.cache
def _normal(sql: str) -> str:
    # An index on a partitioned table (agent_logs on PostgreSQL) reads "ON ONLY table".
    return _DECORATION.sub("", re.sub(r"\bON ONLY\b", "ON", sql)).lower()


def _expected(dialect: str) -> dict[str, tuple[str, str]]:
    """Per object name: (kind, definition) as the models build it."""
    wanted: dict[str, tuple[str, str]] = {}
    for source in SOURCES:
        if dialect == "sqlite":
            create_table, *create_triggers = source.sqlite_create()[:4]
            wanted[source.fts_table] = ("full-text table", create_table)
            for name, sql in zip(source.triggers, create_triggers, strict=True):
                wanted[name] = ("full-text trigger", sql)
        else:
            wanted[source.pg_index] = ("full-text index", source.pg_create()[0])
    return wanted


def _live(connection: Connection) -> dict[str, str]:
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'trigger')"
        ).all()
    else:
        rows = connection.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        ).all()
    return {str(name): str(sql or "") for name, sql in rows}


def compare_full_text(connection: Connection) -> list[str]:
    """One line per full-text object that is missing or defined otherwise than the models say."""
    live = _live(connection)
    problems = []
    for name, (kind, sql) in _expected(connection.dialect.name).items():
        if name not in live:
            problems.append(f"{kind} {name} is in the models but missing from the database")
        elif _normal(live[name]) != _normal(sql):
            problems.append(f"{kind} {name} is defined differently in the database: {live[name]}")
    return problems
