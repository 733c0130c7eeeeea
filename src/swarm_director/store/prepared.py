"""SQLAlchemy statements compiled once per dialect and run on the driver's cursor of the
caller's connection: for the hottest write path (the work queue's claim and completion),
where SQLAlchemy's work per execution costs more than the statement itself.

A :class:`Prepared` statement is still built from SQLAlchemy constructs with bound
parameters; what it skips is the per-call part of ``Connection.execute``: the compiled-cache
lookup, the execution context, the result's metadata and its ``Row`` objects. Compiled once
per dialect, it keeps the SQL text, the order of its parameters, the values of its literals
(already through their types' bind processors) and the result processors of its columns.
A call puts the caller's values through the same bind processors SQLAlchemy would use (an
enum as its stored text, a timestamp as SQLite's text, a JSON document), runs the text on the
driver's cursor inside the connection's transaction (:func:`~swarm_director.db.driver.
driver_execute`: SQLAlchemy's cursor events, timing hooks and error handling kept), and
returns :class:`ResultRow` objects: attributes like a ``Row``'s, each value put through its
column's result processor when it is read.

Rejected: ``Connection.exec_driver_sql`` (still builds an execution context and a cursor
result per call: about half the cost saved here), and SQL written by hand per dialect (two
texts to keep in step with the models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

from swarm_director.db.driver import driver_execute

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """One statement compiled for one dialect."""

    sql: str
    #: Parameter names in order for a positional driver (SQLite); None: by name (psycopg).
    order: tuple[str, ...] | None
    #: The caller's parameters and their bind processors.
    given: tuple[tuple[str, Processor], ...]
    #: The statement's own literals, processed already.
    fixed: dict[str, Any]
    #: The type of the rows (None: a statement without rows).
    row: Callable[[Any], Any] | None


class Prepared:
    """A statement compiled once per dialect and run on the driver's cursor (see the
    module's docstring). Every value a statement sets must be a bound parameter or a
    literal: Python-side column defaults (``onupdate``) are not run, so a statement that
    would need one is refused when it is compiled."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self._statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        # By the dialect's name: one driver per dialect here (pysqlite, psycopg), and what
        # compiles differently (paramstyle, RETURNING, locking) follows the dialect.
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self._statement, dialect)
        return plan

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """The statement's rows for ``params``, run in ``connection``'s transaction; empty
        for a statement without rows."""
        plan = self._plan(connection.dialect)
        values = dict(plan.fixed)
        for name, processor in plan.given:
            value = params[name]
            values[name] = value if processor is None else processor(value)
        args: Any = values if plan.order is None else [values[name] for name in plan.order]
        cursor = driver_execute(connection, plan.sql, args)
        try:
            if plan.row is None:
                return []
            return list(map(plan.row, cursor.fetchall()))
        finally:
            cursor.close()

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Any | None:
        """The statement's first row for ``params``, or None."""
        found = self.rows(connection, params)
        return found[0] if found else None

    def run(self, connection: Connection, params: Mapping[str, Any]) -> None:
        """Run the statement for ``params`` (its rows, if any, are dropped)."""
        self.rows(connection, params)


def _compile(statement: Select[Any] | UpdateBase, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch:
        names = [c.name for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise TypeError(f"a prepared statement must set {names} itself (no Python defaults)")
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    given: list[tuple[str, Processor]] = []
    fixed: dict[str, Any] = {}
    for name, bind in by_name.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.required:
            given.append((name, processor))
        else:
            value = bind.effective_value
            fixed[name] = value if processor is None else processor(value)
    columns = compiled._result_columns
    keys = [column[0] for column in columns]
    processors = [
        column[3].dialect_impl(dialect).result_processor(dialect, None) for column in columns
    ]
    row = _row_type(keys, processors) if keys else None
    return _Plan(
        sql=str(compiled),
        order=tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None,
        given=tuple(given),
        fixed=fixed,
        row=row,
    )


class ResultRow:
    """A row of a prepared statement: the driver's values, each put through its column's
    result processor when its attribute is read (a claim's caller often reads only the
    task's id; an API response reads every field once)."""

    __slots__ = ("_values",)
    _fields: tuple[str, ...] = ()

    def __init__(self, values: Sequence[Any]) -> None:
        self._values = values

    def _asdict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def __repr__(self) -> str:
        return f"ResultRow({self._asdict()!r})"


def _row_type(keys: list[str], processors: Sequence[Processor]) -> type[ResultRow]:
    attributes: dict[str, Any] = {"__slots__": (), "_fields": tuple(keys)}
    for index, (key, processor) in enumerate(zip(keys, processors, strict=True)):
        attributes[key] = property(_reader(index, processor))
    return type("ResultRow", (ResultRow,), attributes)


def _reader(index: int, processor: Processor) -> Callable[[ResultRow], Any]:
    if processor is None:
        return lambda row: row._values[index]
    return lambda row: processor(row._values[index])
