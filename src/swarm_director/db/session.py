"""The one transaction primitive: the caller's boundary opens and commits, once.

Store functions take a :class:`~sqlalchemy.orm.Session` and never commit. Whoever owns the
unit of work (an API request, a CLI command, an agent worker) does::

    db = Database.from_settings(load_settings())
    with db.transaction() as session:
        tasks.create_task(session, ...)

and gets a commit on success and a rollback on any exception.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from swarm_director.config import Settings
from swarm_director.db.driver import driver_call, driver_execute
from swarm_director.db.engine import NO_TRANSACTION, create_engine_from_settings, make_engine
from swarm_director.db.reads import PRIMARY, ReadPlace
from swarm_director.db.replicas import ReplicaSet
from swarm_director.errors import ConfigError
from swarm_director.redact import masked_url

#: The WAL insert position as a number: past the commit record of every committed transaction.
_INSERT_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"


def _commit(driver: Any) -> None:
    driver.commit()


def _rollback(driver: Any) -> None:
    if driver.in_transaction:  # an error may have ended it already
        driver.rollback()


class _SqliteWriter:
    """The connection :meth:`Database.writes` uses on SQLite: one per process, taken by one
    thread at a time.

    SQLite lets one transaction write at a time anyway. Within a process the threads now
    queue on a lock, which hands over at once, instead of in SQLite's busy handler (sleeps of
    1, 2, 5 ... 100 ms); and the connection stays checked out, so a transaction costs no pool
    checkout and check-in (about a tenth of a queue claim's CPU). Sessions
    (:meth:`Database.transaction`) still take pooled connections. A nested ``writes()`` in
    the same thread gets the same connection, whose ``BEGIN`` then fails at once (it used to
    wait out the busy timeout for the outer transaction's lock).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.RLock()
        self._connection: Connection | None = None
        self._pid = os.getpid()
        self._inherited: list[Connection] = []

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self._lock:
            connection = self._connection
            if connection is not None and self._pid != os.getpid():
                # Made before a fork: the parent's. Kept, never used or closed here (closing
                # would touch the parent's SQLite handle).
                self._inherited.append(connection)
                connection = None
            elif connection is not None and (connection.closed or connection.invalidated):
                connection.close()
                connection = None
            if connection is None:
                connection = self._connection = self._engine.connect()
                self._pid = os.getpid()
            yield connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None


class Database:
    """An engine plus session factories for write and read-only units of work.

    ``engine`` is the primary: every write, claim and migration, and every read that does not
    ask for :meth:`reads_for`. ``replicas`` (PostgreSQL standbys) serve the reads that do.
    """

    def __init__(self, engine: Engine, replicas: ReplicaSet | None = None) -> None:
        self.engine = engine
        self._write = sessionmaker(bind=engine, expire_on_commit=False)
        # writes() on SQLite: SQLAlchemy's begin, if a statement asks for one, emits nothing
        # (the engine's begin event skips it; the driver's BEGIN IMMEDIATE is already open).
        self._driver_writes = engine.execution_options(**{NO_TRANSACTION: True})
        self._writer = _SqliteWriter(self._driver_writes)
        self.primary = ReadPlace(PRIMARY, engine)
        self.replicas = replicas
        self._on_dispose: list[Callable[[], None]] = []
        if replicas is not None:
            self.on_dispose(replicas.close)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """A database for the configured URL (the embedded SQLite file by default), with the
        configured read replicas. Raises ConfigError for replicas of a SQLite database."""
        engine = create_engine_from_settings(settings)
        if not settings.replica_urls:
            return cls(engine)
        if engine.dialect.name != "postgresql":
            engine.dispose()
            raise ConfigError("SWARM_REPLICA_URLS needs a PostgreSQL DATABASE_URL")
        replicas = ReplicaSet(
            engine,
            [
                make_engine(
                    url,
                    pool_size=settings.pool_size,
                    transaction_pooler=settings.pg_transaction_pooler,
                    connect_timeout_s=2,
                )
                for url in settings.replica_urls
            ],
            max_lag_s=settings.replica_max_lag_s,
            wait_s=settings.replica_wait_s,
            check_s=settings.replica_check_s,
        )
        return cls(engine, replicas)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def masked_url(self) -> str:
        """The URL with its password hidden, safe to print."""
        return masked_url(self.engine.url)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a write transaction: committed on exit, rolled back on error."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def writes(self) -> Iterator[Connection]:
        """A Core connection in a write transaction: committed on exit, rolled back on error.

        For the hot write paths that run prebuilt Core statements and build no ORM objects
        (the work queue's claims and completions), where a :class:`Session` around them costs
        more than their statements. On SQLite it begins with ``BEGIN IMMEDIATE`` like a
        session's transaction, run on the driver's connection together with its commit or
        rollback: SQLAlchemy's own transaction around them (its begin event and commit path)
        cost as much as the queue's statements again (``bench/work_queue.py``). Statements run
        through SQLAlchemy on the connection still take part in that transaction. The
        connection is the process's one writer connection (:class:`_SqliteWriter`).
        """
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self._writer.connection() as connection:
            driver_execute(connection, "BEGIN IMMEDIATE", ()).close()
            try:
                yield connection
            except BaseException:
                driver_call(connection, _rollback, "ROLLBACK")
                raise
            driver_call(connection, _commit, "COMMIT")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session on the primary for reads only; never takes the SQLite write lock, always
        rolled back (see :meth:`ReadPlace.session`)."""
        with self.primary.session() as session:
            yield session

    @contextmanager
    def statement_reads(self) -> Iterator[Connection]:
        """A Core connection for reads that runs each statement on its own, outside a
        transaction (see :func:`~swarm_director.db.engine.statement_reads`).

        For the hottest reads, a row by id or a page of logs, where the ORM session and the
        transaction around one query cost more than the query. Two statements on it may see
        different committed states; reads that must agree use :meth:`read`.
        """
        with self.primary.statements() as connection:
            yield connection

    def reads_for(self, min_position: int | None = None) -> ReadPlace:
        """Where a read-only unit of work goes: a replica that is close enough behind (and has
        replayed ``min_position``, a commit position from :meth:`commit_position`, waiting
        briefly for one), else the primary."""
        if self.replicas is None:
            return self.primary
        return self.replicas.choose(min_position) or self.primary

    def commit_position(self) -> int | None:
        """With replicas, the primary's WAL position now: every transaction committed before
        the call is at or before it (None without replicas, where nobody needs it)."""
        if self.replicas is None:
            return None
        with self.primary.statements() as connection:
            position = connection.execute(text(_INSERT_POSITION)).scalar_one()
        return int(position)

    def on_dispose(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when :meth:`dispose` runs, before the connections close (e.g.
        to stop a background thread that uses the engine)."""
        self._on_dispose.append(callback)

    def dispose(self) -> None:
        """Run the :meth:`on_dispose` callbacks, then close every pooled connection."""
        while self._on_dispose:
            self._on_dispose.pop()()
        self._writer.close()
        self.engine.dispose()
