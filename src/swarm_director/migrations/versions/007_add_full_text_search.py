"""Full-text search over log messages, conversation messages and task titles/descriptions.

Revision ID: 007_add_full_text_search
Revises: 006_add_statement_timings
Create Date: 2026-12-01

SQLite: an FTS5 external-content table per source, kept exact by insert/delete/update
triggers, filled from the existing rows at upgrade (``'rebuild'``). PostgreSQL: an expression
GIN index per source. See :mod:`swarm_director.models.fulltext`, which the schema built from
the models uses; this file keeps its own copy of the statements because a revision is history.

Any later revision that rebuilds ``agent_logs``, ``tasks`` or ``messages`` on SQLite (batch
mode copies, drops and renames the table) drops the triggers with the old table and must
create them again; ``db validate-schema`` reports them missing otherwise.
"""

from __future__ import annotations

from alembic import op

revision = "007_add_full_text_search"
down_revision: str | None = "006_add_statement_timings"
branch_labels: str | None = None
depends_on: str | None = None

#: (table, indexed columns) of each source.
_SOURCES = (
    ("agent_logs", ("message",)),
    ("tasks", ("title", "description")),
    ("messages", ("content",)),
)
_TOKENIZER = "unicode61 remove_diacritics 0"


def _sqlite_create(table: str, columns: tuple[str, ...]) -> list[str]:
    fts = f"{table}_fts"
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    add = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new});"  # noqa: S608
    remove = f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old});"  # noqa: S608
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', "
        f"content_rowid='id', tokenize='{_TOKENIZER}')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} BEGIN {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",  # noqa: S608
    ]


def _pg_create(table: str, columns: tuple[str, ...]) -> str:
    parts = [f"coalesce({c}, '')" for c in columns]
    text = " || ' ' || ".join(parts) if len(columns) > 1 else columns[0]
    document = (
        f"to_tsvector('simple', regexp_replace(left({text}, 100000), '[^[:alnum:]]+', ' ', 'g'))"
    )
    return f"CREATE INDEX ix_{table}_fts ON {table} USING gin ({document})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, columns in _SOURCES:
        if dialect == "sqlite":
            for statement in _sqlite_create(table, columns):
                op.execute(statement)
        else:
            op.execute(_pg_create(table, columns))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, _columns in reversed(_SOURCES):
        if dialect == "sqlite":
            for kind in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{kind}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        else:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_fts")
