"""Compare the live database schema with the models and say what differs, in plain words.

Alembic's autogenerate comparison covers tables, columns, types, nullability, server defaults,
indexes, unique constraints and foreign keys (with their ON DELETE actions). It does not look
at CHECK constraints, which carry the allowed values of every enum column here, nor at primary
keys; those are compared below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    ForeignKeyConstraint,
    Index,
    Table,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.engine import Dialect, Inspector

from swarm_director import models  # noqa: F401  (registers every table on Base.metadata)
from swarm_director.db import Base
from swarm_director.db.engine import READ_ONLY
from swarm_director.db.partitions import PARTITION_BY, partition_key, partition_names
from swarm_director.models.fulltext import full_text_names
from swarm_director.ops.checks.fulltext_drift import compare_full_text

#: Alembic's own bookkeeping table; not part of the models.
VERSION_TABLE = "alembic_version"

_SQL_STRING = re.compile(r"'((?:[^']|'')*)'")


def compare_schema(engine: Engine) -> list[str]:
    """Differences between the database behind ``engine`` and the models, one line each.

    An empty list means the database has exactly the schema the models describe (ignoring the
    ``alembic_version`` table). Each line names the table and the column, index or constraint.
    """
    with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        return _compare(connection)


def _compare(connection: Connection) -> list[str]:
    # The partitions of a partitioned table are its storage, not tables of their own; the
    # full-text objects are not models (FTS5 tables, expression indexes) and are compared by
    # compare_full_text instead, by name and definition.
    skipped = {VERSION_TABLE, *partition_names(connection), *full_text_names()}

    def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
        return not (type_ in ("table", "index") and name in skipped)

    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": include_name,
        },
    )
    dialect = connection.dialect
    diffs = list(_flatten(compare_metadata(context, Base.metadata)))
    # A table missing (or extra) as a whole is one problem, not one per index of it.
    whole = {diff[1].name for diff in diffs if diff[0] in ("add_table", "remove_table")}
    problems = [
        _describe(diff, dialect)
        for diff in diffs
        if diff[0] in ("add_table", "remove_table") or _table_of(diff) not in whole
    ]
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name in existing:
            key = partition_key(connection, table.name)
            problems.extend(_compare_partitioning(table, key, dialect))
            problems.extend(_compare_primary_key(inspector, table, key))
            problems.extend(_compare_checks(inspector, table, dialect))
    problems.extend(compare_full_text(connection))
    return problems


def _flatten(diffs: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    # Column modifications come grouped in lists, everything else as single tuples.
    for diff in diffs:
        if isinstance(diff, list):
            yield from diff
        else:
            yield diff


def _table_of(diff: tuple[Any, ...]) -> str | None:
    if isinstance(diff[1], (Index, UniqueConstraint, ForeignKeyConstraint)):
        table = diff[1].table
        return str(table.name) if table is not None else None
    return str(diff[2]) if len(diff) > 2 else None


def _columns(names: Iterable[Any]) -> str:
    return ", ".join(str(getattr(name, "name", name)) for name in names)


def _type(type_: Any, dialect: Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # a reflected type the dialect cannot render: show what we know
        return repr(type_)


def _default(default: Any) -> str:
    if default is None:
        return "none"
    arg = getattr(default, "arg", default)
    return str(getattr(arg, "text", arg))


def _where(present: bool) -> str:
    # "add_*" diffs: what the models have and the database lacks; "remove_*": the reverse.
    if present:
        return "in the models but missing from the database"
    return "in the database but not in the models"


def _fk(fk: ForeignKeyConstraint) -> str:
    target = ", ".join(element.target_fullname for element in fk.elements)
    action = f" ON DELETE {fk.ondelete.upper()}" if fk.ondelete else ""
    columns = _columns(fk.column_keys)
    return f"foreign key {fk.name} on {fk.table.name} ({columns}) -> {target}{action}"


def _describe(diff: tuple[Any, ...], dialect: Dialect) -> str:
    kind = diff[0]
    add = kind.startswith("add_")
    if kind in ("add_table", "remove_table"):
        table: Table = diff[1]
        return f"table {table.name} is {_where(add)}"
    if kind in ("add_column", "remove_column"):
        column: Column[Any] = diff[3]
        return f"column {diff[2]}.{column.name} is {_where(add)}"
    if kind in ("add_index", "remove_index"):
        index: Index = diff[1]
        unique = "unique index" if index.unique else "index"
        table_name = index.table.name if index.table is not None else "?"
        return f"{unique} {index.name} on {table_name} ({_columns(index.columns)}) is {_where(add)}"
    if kind in ("add_constraint", "remove_constraint") and isinstance(diff[1], UniqueConstraint):
        uq: UniqueConstraint = diff[1]
        return (
            f"unique constraint {uq.name} on {uq.table.name} ({_columns(uq.columns)}) "
            f"is {_where(add)}"
        )
    if kind in ("add_fk", "remove_fk"):
        return f"{_fk(diff[1])} is {_where(add)}"
    if kind == "modify_type":
        _, _, table_name, column_name, _, db_type, model_type = diff
        return (
            f"column {table_name}.{column_name} has type {_type(db_type, dialect)} in the "
            f"database but {_type(model_type, dialect)} in the models"
        )
    if kind == "modify_nullable":
        _, _, table_name, column_name, _, db_nullable, _ = diff
        db_says = "allows NULL" if db_nullable else "is NOT NULL"
        models_say = "is NOT NULL" if db_nullable else "allows NULL"
        return (
            f"column {table_name}.{column_name} {db_says} in the database "
            f"but {models_say} in the models"
        )
    if kind == "modify_default":
        _, _, table_name, column_name, _, db_default, model_default = diff
        return (
            f"column {table_name}.{column_name} has server default {_default(db_default)} in "
            f"the database but {_default(model_default)} in the models"
        )
    return f"schema difference: {diff!r}"


def _compare_partitioning(table: Table, key: str | None, dialect: Dialect) -> list[str]:
    """PostgreSQL: a table the models partition must be range-partitioned by that column."""
    wanted = table.info.get(PARTITION_BY) if dialect.name == "postgresql" else None
    if key == wanted:
        return []
    in_db = f"partitioned by {key}" if key else "not partitioned"
    in_models = f"partitioned by {wanted}" if wanted else "not partitioned"
    return [f"table {table.name} is {in_db} in the database but {in_models} in the models"]


def _compare_primary_key(inspector: Inspector, table: Table, key: str | None) -> list[str]:
    in_db = inspector.get_pk_constraint(table.name).get("constrained_columns") or []
    in_models = [column.name for column in table.primary_key.columns]
    if key is not None and key not in in_models:
        in_models.append(key)  # PostgreSQL requires the partition key in the primary key
    if list(in_db) == in_models:
        return []
    return [
        f"primary key of {table.name} is ({_columns(in_db)}) in the database but "
        f"({_columns(in_models)}) in the models"
    ]


def _literals(sql: str) -> frozenset[str]:
    # Enum checks are "col IN ('a', 'b')"; PostgreSQL reflects them as
    # "((col)::text = ANY (ARRAY['a'::character varying, ...]))". The quoted values are what
    # both spellings have in common, and what matters: which values the column accepts.
    return frozenset(value.replace("''", "'") for value in _SQL_STRING.findall(sql))


def _compare_checks(inspector: Inspector, table: Table, dialect: Dialect) -> list[str]:
    in_models = {
        str(constraint.name): _literals(
            str(constraint.sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        )
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    in_db = {
        str(check["name"]): _literals(str(check["sqltext"]))
        for check in inspector.get_check_constraints(table.name)
    }
    problems = []
    for name in sorted(in_models.keys() - in_db.keys()):
        problems.append(f"check constraint {name} on {table.name} is {_where(True)}")
    for name in sorted(in_db.keys() - in_models.keys()):
        problems.append(f"check constraint {name} on {table.name} is {_where(False)}")
    for name in sorted(in_models.keys() & in_db.keys()):
        if in_models[name] != in_db[name]:
            problems.append(
                f"check constraint {name} on {table.name} allows {sorted(in_db[name])} in the "
                f"database but {sorted(in_models[name])} in the models"
            )
    return problems
