"""A place reads are served from: the primary's engine or a replica's, with the two read
paths :class:`~swarm_director.db.session.Database` offers (an ORM session, statement reads)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from swarm_director.db.engine import READ_ONLY, statement_reads

PRIMARY = "primary"


class ReadPlace:
    """Read-only sessions and statement reads on one engine; ``name`` says which server
    (``primary``, or a replica's masked URL)."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        self._read = sessionmaker(
            bind=engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._statements = statement_reads(engine)

    @property
    def is_primary(self) -> bool:
        return self.name == PRIMARY

    def usable(self) -> bool:
        """Whether reads may still go here (a replica may fall behind; the primary stays)."""
        return True

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads only; never takes the SQLite write lock, always rolled back.

        Closing the session returns its connection with a rollback; an explicit
        ``Session.rollback()`` first would only add an expire-all pass over loaded objects.
        """
        with self._read() as session:
            yield session

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """A Core connection that runs each statement on its own, outside a transaction."""
        with self._statements.connect() as connection:
            yield connection
