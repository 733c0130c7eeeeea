"""Statements run on the driver's own cursor of a SQLAlchemy connection, keeping what
SQLAlchemy's execution gives besides the statement: the ``before_cursor_execute`` /
``after_cursor_execute`` events of the engine and the dialect's ``do_execute`` hooks
(statement timings) are fired when present, and a driver error goes through the connection's
own error handling (wrapped in SQLAlchemy's ``DBAPIError``, a lost connection invalidated), so
callers and the API's error mapping see what ``Connection.execute`` would give them.

For the hot paths where SQLAlchemy's work per execution costs more than the statement (the
work queue's prepared statements, :mod:`swarm_director.store.prepared`, and the SQLite write
transaction of :meth:`~swarm_director.db.session.Database.writes`). It leans on three
attributes SQLAlchemy keeps private (``_has_events``, ``_handle_dbapi_exception``): the
price of running its events without its execution context; ``tests/store/test_prepared.py``
checks that they still behave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection


def driver_execute(connection: Connection, sql: str, args: Any) -> Any:
    """``sql`` run on a new cursor of ``connection``'s driver connection with ``args`` (as
    the driver takes them); returns the cursor, for the caller to read and close."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # The engine's listeners directly: a connection's own dispatch joins them anew for
        # each connection, which costs more than the statement.
        dispatch = connection.dispatch if connection._has_events else connection.engine.dispatch
        before = dispatch.before_cursor_execute
        if before:
            for fn in before:
                sql, args = fn(connection, cursor, sql, args, None, False)
        hooks = connection.dialect.dispatch.do_execute
        # A hook that returns True ran the statement itself (as SQLAlchemy asks).
        if not (hooks and any(fn(cursor, sql, args, None) for fn in hooks)):
            cursor.execute(sql, args)
        after = dispatch.after_cursor_execute
        if after:
            for fn in after:
                fn(connection, cursor, sql, args, None, False)
    except BaseException as error:
        cursor.close()
        connection._handle_dbapi_exception(error, sql, args, None, None)
    return cursor


def driver_call(connection: Connection, call: Callable[[Any], None], what: str) -> None:
    """``call(driver_connection)`` (a commit, a rollback) with SQLAlchemy's error handling;
    ``what`` names it in an error."""
    try:
        call(connection.connection.driver_connection)
    except BaseException as error:
        connection._handle_dbapi_exception(error, what, None, None, None)
