"""Engines for SQLite and PostgreSQL, configured from the same settings.

SQLite connections get foreign keys, WAL, ``synchronous=NORMAL`` and a busy timeout, and every
transaction that may write starts with ``BEGIN IMMEDIATE``: it takes the write lock up front, so
a second writer waits (up to the busy timeout) instead of failing later with "database is
locked" when it tries to upgrade a read lock. Read-only work uses ``engine.execution_options(
read_only=True)`` (see :class:`~swarm_director.db.session.Database`) and starts a plain
deferred ``BEGIN`` so readers never queue behind writers. Reads of a single statement need no
transaction at all: :func:`statement_reads` runs each statement on its own (autocommit).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from swarm_director.config import Settings
from swarm_director.private_files import create_private_file, private_dir

READ_ONLY = "read_only"
#: A PostgreSQL connection that sat in the pool longer than this is pinged before it is handed
#: out; one checked in more recently is handed out as it is (see :func:`_install_idle_ping`).
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "swarm_idle_since"
#: Execution option: SQLAlchemy's begin emits nothing on SQLite. Each statement then runs on
#: its own (autocommit), unless the caller opened the transaction on the driver's connection
#: itself (``Database.writes``).
NO_TRANSACTION = "swarm_no_transaction"


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None for other dialects and in-memory databases)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _enable_wal(cursor: sqlite3.Cursor, busy_timeout_s: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting like any writer when the database is locked.

    Switching a new database into WAL needs an exclusive lock and SQLite answers "database is
    locked" at once, without the busy handler, while another connection holds one; two
    processes opening a brand-new file together (two ``db init``) hit it. Once the file is in
    WAL mode the pragma is a no-op that never locks.
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _install_sqlite_hooks(engine: Engine, busy_timeout_s: float) -> None:
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
            _enable_wal(cursor, busy_timeout_s)
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A batch migration rebuilds a table (copy, drop, rename the copy back). Since
            # SQLite 3.26 the rename re-parses every trigger of the schema and fails on one
            # that names the dropped table (the report rollups' history trigger names tasks);
            # the legacy rename skips that check, and the name it restores is the old one.
            cursor.execute("PRAGMA legacy_alter_table=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT" or options.get(NO_TRANSACTION):
            return  # VACUUM, checkpoints and the like must run outside a transaction
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _create_file_private(engine: Engine, path: Path) -> None:
    """Create a new SQLite file ``0600`` just before the first connection would create it.

    SQLite would create it with the process's default mode (``0644`` under the usual umask),
    readable by every local user; it gives the ``-wal`` and ``-shm`` files the main file's
    mode, so creating the main file private makes all three private. An existing file is
    left as it is, and a missing folder is left for SQLite to report as before.
    """

    @event.listens_for(engine, "do_connect")
    def _before_connect(*_args: Any) -> None:
        if not path.exists():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                create_private_file(path)


def make_engine(
    url: URL | str,
    *,
    busy_timeout_s: float = 30.0,
    pool_size: int = 5,
    create_dirs: bool = False,
    transaction_pooler: bool = False,
    connect_timeout_s: int | None = None,
) -> Engine:
    """An engine for ``url`` with this project's connection settings applied.

    ``create_dirs`` creates the folder of a SQLite file (used for the embedded default only,
    so that a mistyped explicit path fails instead of silently creating folders).
    ``transaction_pooler`` (PostgreSQL): the URL is a pooler in transaction mode, where a
    statement the driver prepared on one server connection is missing on the next (psycopg
    prepares a statement on its fifth run), so nothing is prepared. ``connect_timeout_s``
    bounds how long opening a PostgreSQL connection may take (libpq's default: forever).
    """
    url = url if isinstance(url, URL) else make_url(url)
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if create_dirs and path is not None:
            private_dir(path.parent)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
        _install_sqlite_hooks(engine, busy_timeout_s)
        if path is not None and "mode" not in url.query:  # (mode=ro never creates the file)
            _create_file_private(engine, path)
        return engine
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("", "psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if transaction_pooler:
        connect_args["prepare_threshold"] = None
    if connect_timeout_s is not None:
        connect_args["connect_timeout"] = connect_timeout_s
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        connect_args=connect_args,
    )
    _install_idle_ping(engine)
    return engine


def _install_idle_ping(engine: Engine) -> None:
    """Ping a pooled connection on checkout when it has been idle over PING_AFTER_IDLE_S.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip per request (what
    that cost a page read: docs/benchmarks.md, "Scale"). A connection that went dead while idle (a
    server restart, a failover, a proxy's idle timeout) has been idle for longer than the outage; a
    connection used within the last second is handed out without the ping. When a ping fails on a
    lost connection, every pooled connection older than it is replaced and the checkout gets a new
    one, as with ``pool_pre_ping``. What the ping no longer covers, a connection lost within a
    second of its last use, fails its next statement with a disconnect error: the API answers that
    request 503 and the pool is renewed for the next.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)  # none on a connection just made
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_conn, None):
                raise sa_exc.InvalidatePoolError() from error
            raise


def statement_reads(engine: Engine) -> Engine:
    """``engine`` for reads where each statement runs on its own, outside a transaction,
    seeing what was committed when it started.

    For reads of one statement (a row by id, a page of a list) a transaction only adds round
    trips: ``BEGIN`` and ``ROLLBACK`` around the query, on PostgreSQL a third of a single-row
    read's time. PostgreSQL gets its ``AUTOCOMMIT`` isolation level; on SQLite, where setting
    that level makes SQLAlchemy query a PRAGMA per checkout, the ``BEGIN`` is simply skipped
    (the driver already leaves transaction control to SQLAlchemy).
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY: True, NO_TRANSACTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})


def create_engine_from_settings(settings: Settings) -> Engine:
    """The engine the settings describe (the embedded SQLite file if no URL is set)."""
    return make_engine(
        settings.resolved_url(),
        busy_timeout_s=settings.sqlite_busy_timeout_s,
        pool_size=settings.pool_size,
        create_dirs=settings.is_embedded_default,
        transaction_pooler=settings.pg_transaction_pooler,
    )
