"""SQLAlchemy statements run on the driver's own cursor, for reads of millions of rows.

SQLAlchemy's result rows cost about as much again as the read itself when a statement returns
one text a row (an export's lines). These helpers compile the statement for the connection's
dialect, put every bound value through the bind processor SQLAlchemy itself would use (an
enum as its stored text, a timestamp as SQLite's text), and hand both to the driver: the SQL
is still built from SQLAlchemy constructs with bound parameters, only the rows skip it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Generator
from typing import Any

from sqlalchemy import Connection, Dialect, Select
from sqlalchemy.sql.compiler import SQLCompiler

_EXPANDED = re.compile(r"^(.*)_\d+$")


def compiled(stmt: Select[Any], dialect: Dialect) -> SQLCompiler:
    """``stmt`` compiled for ``dialect``, IN lists expanded into one parameter a value."""
    result = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(result, SQLCompiler)
    return result


def driver_statement(statement: SQLCompiler) -> tuple[str, dict[str, Any]]:
    """A compiled statement's text and parameters as the driver takes them (each value
    through its type's bind processor, e.g. an enum to its stored text)."""
    binds = {name: bind for bind, name in statement.bind_names.items()}
    dialect = statement.dialect
    params: dict[str, Any] = {}
    for name, value in (statement.construct_params() or {}).items():
        bind = binds.get(name)
        if bind is None:  # a value of an expanded IN list: name_1, name_2, ...
            match = _EXPANDED.match(name)
            bind = binds[match.group(1)] if match else None
        processor = None
        if bind is not None:  # the dialect's own processor (SQLite: timestamps as its text)
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        params[name] = processor(value) if processor is not None else value
    return str(statement), params


def sqlite_rows(
    connection: Connection, stmt: Select[Any], size: int, text: type[str] | type[bytes]
) -> Generator[list[Any]]:
    """SQLite: batches of up to ``size`` rows of ``stmt`` (tuples), read with the driver's
    cursor in the connection's transaction, text as ``text`` (``bytes``: the UTF-8 SQLite
    holds, not decoded)."""
    statement = compiled(stmt, connection.dialect)
    sql, params = driver_statement(statement)
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    text_factory, driver.text_factory = driver.text_factory, text
    cursor = driver.cursor()
    try:
        cursor.execute(sql, [params[name] for name in statement.positiontup or ()])
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()
        driver.text_factory = text_factory


def pg_binary_rows(connection: Connection, stmt: Select[Any]) -> list[tuple[Any, ...]]:
    """PostgreSQL: every row of ``stmt``, read in the binary format on the connection's own
    session (its transaction, if one is open). In the text format a ``bytea`` comes as
    hexadecimal, twice its size, decoded by the client: a month of the durations' digests
    (12 MB) took 74 ms so, 22 ms in binary (docs/benchmarks.md, "Twelfth session")."""
    sql, params = driver_statement(compiled(stmt, connection.dialect))
    driver = connection.connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows
