"""The one transaction primitive: the caller's boundary opens and commits, once.

Store functions take a :class:`~sqlalchemy.orm.Session` and never commit. Whoever owns the
unit of work (an API request, a CLI command, an agent worker) does::

    db = Database.from_settings(load_settings())
    with db.transaction() as session:
        tasks.create_task(session, ...)

and gets a commit on success and a rollback on any exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from swarm_director.config import Settings
from swarm_director.db.engine import (
    READ_ONLY,
    create_engine_from_settings,
    statement_reads,
)
from swarm_director.redact import masked_url


class Database:
    """An engine plus session factories for write and read-only units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = sessionmaker(bind=engine, expire_on_commit=False)
        self._read = sessionmaker(
            bind=engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._statements = statement_reads(engine)
        self._on_dispose: list[Callable[[], None]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """A database for the configured URL (the embedded SQLite file by default)."""
        return cls(create_engine_from_settings(settings))

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
        session's transaction.
        """
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only; never takes the SQLite write lock, always rolled back.

        Closing the session returns its connection with a rollback; an explicit
        ``Session.rollback()`` first would only add an expire-all pass over loaded objects.
        """
        with self._read() as session:
            yield session

    @contextmanager
    def statement_reads(self) -> Iterator[Connection]:
        """A Core connection for reads that runs each statement on its own, outside a
        transaction (see :func:`~swarm_director.db.engine.statement_reads`).

        For the hottest reads, a row by id or a page of logs, where the ORM session and the
        transaction around one query cost more than the query. Two statements on it may see
        different committed states; reads that must agree use :meth:`read`.
        """
        with self._statements.connect() as connection:
            yield connection

    def on_dispose(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when :meth:`dispose` runs, before the connections close (e.g.
        to stop a background thread that uses the engine)."""
        self._on_dispose.append(callback)

    def dispose(self) -> None:
        """Run the :meth:`on_dispose` callbacks, then close every pooled connection."""
        while self._on_dispose:
            self._on_dispose.pop()()
        self.engine.dispose()
