"""Full-text indexes: which columns can be searched, and the DDL that indexes them.

Three sources are searchable: ``agent_logs.message``, ``messages.content`` and a task's title
with its description. Each dialect indexes them its own way, with the same tokens, so that a
query finds the same rows on both:

- SQLite: an FTS5 *external-content* table ``<table>_fts`` (the text stays in the table, the
  index holds only tokens) kept exact by three triggers. They fire for every route a row takes
  out of the table: ``DELETE``, a foreign-key cascade, retention's batched deletes. A restore
  replaces the whole file, index included.
- PostgreSQL: an expression GIN index ``ix_<table>_fts`` over ``to_tsvector('simple', ...)``.
  It is exact by construction; a generated ``tsvector`` column would only add bytes per row.

Tokens on both: runs of letters and digits, lower-cased, accents kept (``unicode61
remove_diacritics 0`` on SQLite; on PostgreSQL every other character is turned into a space
before the ``simple`` parser sees the text, because that parser would keep ``db.example.com``
or ``1.5.2`` as one token and ``example`` would not find it). PostgreSQL indexes the first
:data:`PG_INDEXED_CHARS` characters of a document: a ``tsvector`` is limited to 1 MB and a
message may hold 1,000,000 characters.

The migration ``007_add_full_text_search`` carries its own copy of this DDL (a migration is
history and must not change when this module does); ``db validate-schema`` checks that the
live objects are the ones named here, and ``db check`` that the SQLite indexes match their
tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, event

from swarm_director.db.ddl import dialect_ddl
from swarm_director.models.conversation import Message
from swarm_director.models.log import AgentLog
from swarm_director.models.task import Task

#: The FTS5 tokenizer: letters and digits, case folded, accents kept (as PostgreSQL does).
SQLITE_TOKENIZER = "unicode61 remove_diacritics 0"
#: The PostgreSQL text search configuration: no stemming, no stop words.
PG_CONFIG = "simple"
#: What PostgreSQL turns into spaces before tokenizing (everything but letters and digits).
PG_SEPARATORS = "[^[:alnum:]]+"
#: PostgreSQL indexes this many leading characters of a document (a tsvector holds < 1 MB).
PG_INDEXED_CHARS = 100_000


@dataclass(frozen=True)
class FullTextSource:
    """One searchable table: its name, the id column and the text columns indexed."""

    table: Table
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def fts_table(self) -> str:
        """The SQLite FTS5 table."""
        return f"{self.name}_fts"

    @property
    def triggers(self) -> tuple[str, str, str]:
        """The SQLite triggers that keep the FTS5 table exact."""
        return (f"{self.name}_fts_insert", f"{self.name}_fts_delete", f"{self.name}_fts_update")

    @property
    def pg_index(self) -> str:
        """The PostgreSQL GIN index."""
        return f"ix_{self.name}_fts"

    def pg_text(self, relation: str | None = None) -> str:
        """The text the PostgreSQL index reads: the leading PG_INDEXED_CHARS characters of the
        columns (joined by a space), of ``relation`` when given (a table or a subquery)."""
        prefix = f"{relation}." if relation else ""
        parts = [f"coalesce({prefix}{column}, '')" for column in self.columns]
        text = " || ' ' || ".join(parts) if len(parts) > 1 else f"{prefix}{self.columns[0]}"
        return f"left({text}, {PG_INDEXED_CHARS})"

    def pg_document(self, qualify: bool = False, relation: str | None = None) -> str:
        """The ``tsvector`` expression of the PostgreSQL index. A query must use exactly this
        expression (literals, not parameters) for the planner to use the index. ``qualify``:
        the columns named with the table's name; ``relation``: with that name instead."""
        text = self.pg_text(relation or (self.name if qualify else None))
        return f"to_tsvector('{PG_CONFIG}', regexp_replace({text}, '{PG_SEPARATORS}', ' ', 'g'))"

    def sqlite_create(self) -> list[str]:
        """Statements creating the FTS5 table and its triggers, and indexing existing rows."""
        fts, cols = self.fts_table, self.columns
        names = ", ".join(cols)
        new = ", ".join(f"new.{c}" for c in cols)
        old = ", ".join(f"old.{c}" for c in cols)
        insert, delete, update = self.triggers
        add = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new});"  # noqa: S608
        remove = f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old});"  # noqa: S608
        return [
            f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{self.name}', "
            f"content_rowid='id', tokenize='{SQLITE_TOKENIZER}')",
            f"CREATE TRIGGER {insert} AFTER INSERT ON {self.name} BEGIN {add} END",
            f"CREATE TRIGGER {delete} AFTER DELETE ON {self.name} BEGIN {remove} END",
            f"CREATE TRIGGER {update} AFTER UPDATE OF {names} ON {self.name} "
            f"BEGIN {remove} {add} END",
            f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",  # noqa: S608
        ]

    def sqlite_drop(self) -> list[str]:
        """Statements dropping what :meth:`sqlite_create` made."""
        return [f"DROP TRIGGER IF EXISTS {name}" for name in self.triggers] + [
            f"DROP TABLE IF EXISTS {self.fts_table}"
        ]

    def pg_create(self) -> list[str]:
        """The statement creating the PostgreSQL GIN index."""
        return [f"CREATE INDEX {self.pg_index} ON {self.name} USING gin ({self.pg_document()})"]

    def pg_drop(self) -> list[str]:
        """The statement dropping the PostgreSQL index."""
        return [f"DROP INDEX IF EXISTS {self.pg_index}"]


def _table(model: type[object]) -> Table:
    table = getattr(model, "__table__")  # noqa: B009  (mypy: declarative attribute)
    assert isinstance(table, Table)
    return table


LOGS = FullTextSource(_table(AgentLog), ("message",))
TASKS = FullTextSource(_table(Task), ("title", "description"))
MESSAGES = FullTextSource(_table(Message), ("content",))
#: Every searchable source.
SOURCES = (LOGS, TASKS, MESSAGES)


def sqlite_object_names() -> set[str]:
    """Tables SQLite holds for the FTS5 indexes (virtual tables and their shadow tables)."""
    shadows = ("data", "idx", "docsize", "config", "content")
    return {s.fts_table for s in SOURCES} | {f"{s.fts_table}_{x}" for s in SOURCES for x in shadows}


def _attach(source: FullTextSource) -> None:
    # Schemas built from the models (``create_all``: some tests, benchmarks) get the same
    # objects as the migrated ones.
    for statement in source.sqlite_create():
        event.listen(source.table, "after_create", dialect_ddl(statement, "sqlite"))
    for statement in source.pg_create():
        event.listen(source.table, "after_create", dialect_ddl(statement, "postgresql"))
    for statement in source.sqlite_drop():
        event.listen(source.table, "before_drop", dialect_ddl(statement, "sqlite"))


for _source in SOURCES:
    _attach(_source)


def full_text_names() -> frozenset[str]:
    """Names of every full-text object on either dialect (tables, shadow tables, indexes):
    not models, so schema comparisons (drift check, autogenerate) leave them out."""
    return frozenset(sqlite_object_names() | {s.pg_index for s in SOURCES})
