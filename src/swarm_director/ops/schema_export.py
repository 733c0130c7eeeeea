"""Schema documents generated from the models: SQL for each dialect and a Mermaid ER diagram."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from swarm_director import models  # noqa: F401  (registers every table)
from swarm_director.db.base import Base
from swarm_director.models import rollup_ddl
from swarm_director.models.fulltext import SOURCES

DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
}

_HEADER = (
    "-- SwarmDirector store schema for {dialect}.\n"
    "-- Generated from the SQLAlchemy models by `swarm-director db export-schema`; do not edit.\n"
    "-- The live schema is created by the Alembic migrations, which are checked against the\n"
    "-- same models in CI.\n"
)


def _table_comment(table: Table) -> str:
    doc = (table.info.get("doc") or _model_doc(table) or "").strip().splitlines()
    return f"-- {table.name}: {doc[0]}" if doc else f"-- {table.name}"


def _model_doc(table: Table) -> str | None:
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_.__doc__
    return None


def render_sql(dialect_name: str) -> str:
    """CREATE TABLE and CREATE INDEX statements for every table, in dependency order."""
    dialect = DIALECTS[dialect_name]
    parts = [_HEADER.format(dialect=dialect_name)]
    for table in Base.metadata.sorted_tables:
        create = str(CreateTable(table).compile(dialect=dialect)).strip()
        parts.append(f"{_table_comment(table)}\n{create};\n")
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            parts.append(f"{str(CreateIndex(index).compile(dialect=dialect)).strip()};\n")
    # Foreign keys in a reference cycle (use_alter) are left out of CREATE TABLE by dialects
    # that support ALTER; they are added once both tables exist.
    deferred = [
        fk
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_key_constraints
        if fk.use_alter and dialect.supports_alter
    ]
    if deferred:
        parts.append("-- Foreign keys of the tasks <-> conversations reference cycle.")
        for fk in deferred:
            # isolate_from_table=False: the default marks the constraint as never to be
            # rendered inline again, which would drop it from the next dialect's CREATE TABLE.
            add = AddConstraint(fk, isolate_from_table=False)
            parts.append(f"{str(add.compile(dialect=dialect)).strip()};\n")
    parts.append("-- Full-text search (see swarm_director.models.fulltext).")
    for source in SOURCES:
        statements = source.sqlite_create() if dialect_name == "sqlite" else source.pg_create()
        parts.extend(f"{statement};\n" for statement in statements)
    parts.append("-- Report rollups kept exact by the writes (see swarm_director.models.rollup).")
    statements = (
        rollup_ddl.sqlite_create() + rollup_ddl.task_sqlite_create()
        if dialect_name == "sqlite"
        else rollup_ddl.pg_create() + rollup_ddl.task_pg_create()
    )
    parts.extend(f"{statement};\n" for statement in statements)
    return "\n".join(parts)


def _mermaid_type(column: Column[object]) -> str:
    return type(column.type).__name__.lower().replace("utcdatetime", "timestamp")


def render_markdown() -> str:
    """``docs/schema.md``: a Mermaid ER diagram plus one table of columns per table."""
    lines = [
        "# Database schema",
        "",
        "Generated from the models by `swarm-director db export-schema`; do not edit by hand.",
        "SQL for each dialect: [schema/sqlite.sql](schema/sqlite.sql),",
        "[schema/postgresql.sql](schema/postgresql.sql).",
        "",
        "```mermaid",
        "erDiagram",
    ]
    tables = Base.metadata.sorted_tables
    for table in tables:
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = [
                k for k, on in (("PK", column.primary_key), ("FK", bool(column.foreign_keys))) if on
            ]
            suffix = f" {','.join(keys)}" if keys else ""
            lines.append(f"        {_mermaid_type(column)} {column.name}{suffix}")
        lines.append("    }")
    for table in tables:
        for fk in sorted(table.foreign_keys, key=lambda f: str(f.parent.name)):
            label = f"{fk.parent.name} ({fk.ondelete or 'NO ACTION'})"
            lines.append(f'    {fk.column.table.name} ||--o{{ {table.name} : "{label}"')
    lines += ["```", ""]
    for table in tables:
        doc = (_model_doc(table) or "").strip().splitlines()
        lines += [f"## {table.name}", ""]
        if doc:
            lines += [doc[0], ""]
        lines += ["| column | type | null | notes |", "|---|---|---|---|"]
        for column in table.columns:
            notes = []
            if column.primary_key:
                notes.append("primary key")
            for fk in column.foreign_keys:
                notes.append(f"→ {fk.target_fullname} on delete {fk.ondelete or 'no action'}")
            type_sql = column.type.compile(dialect=DIALECTS["postgresql"])
            null = "yes" if column.nullable else "no"
            lines.append(f"| {column.name} | {type_sql} | {null} | {'; '.join(notes)} |")
        indexes = sorted(str(ix.name) for ix in table.indexes)
        uniques = sorted(str(c.name) for c in table.constraints if isinstance(c, UniqueConstraint))
        if indexes or uniques:
            lines += ["", "Indexes: " + ", ".join(f"`{n}`" for n in uniques + indexes)]
        lines.append("")
    return "\n".join(lines)


def export_schema(docs_dir: Path) -> list[Path]:
    """Write ``schema.md`` and ``schema/<dialect>.sql`` under ``docs_dir``; returns the paths."""
    (docs_dir / "schema").mkdir(parents=True, exist_ok=True)
    written = []
    for name in DIALECTS:
        path = docs_dir / "schema" / f"{name}.sql"
        path.write_text(render_sql(name), encoding="utf-8")
        written.append(path)
    md = docs_dir / "schema.md"
    md.write_text(render_markdown(), encoding="utf-8")
    written.append(md)
    return written
