"""Steering SQLite's query planner where it has no statistics to go by.

SQLite chooses its indexes from ``sqlite_stat1``, which only ``ANALYZE`` writes (``db
optimize``, ``db maintain``). Without it the planner takes an equality for selective: it
reads ``history`` through ``(entity, entity_id, id)`` for ``entity = 'task'``, every step of
every task, rather than the steps of the range through ``(at)``. :func:`unindexed` keeps a
term from being used through an index (SQLite's documented unary ``+``), so the range's index
is the one left; other dialects get the column as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class _Unindexed(FunctionElement[Any]):
    inherit_cache = True


def unindexed(column: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """``column``, which SQLite's planner may not read through an index."""
    element = _Unindexed(column)
    element.type = column.type
    return element


@compiles(_Unindexed, "sqlite")
def _plus(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(_Unindexed)
def _as_is(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)
