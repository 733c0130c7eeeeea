"""Throwaway databases for tests, on SQLite and PostgreSQL.

PostgreSQL tests use the server at ``SWARM_TEST_PG_URL`` (default: the local server with trust
auth). Every database created here has a unique ``sdtest_`` name and is dropped afterwards;
nothing else on the server is touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from swarm_director.db.provision import create_server_database, drop_server_database

PG_ADMIN_URL = os.environ.get(
    "SWARM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pg_unreachable_reason() -> str | None:
    """None when the test PostgreSQL server answers, else why it does not."""
    engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return (
            f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string()} unreachable: {first_line}"
        )
    finally:
        engine.dispose()
    return None


def create_pg_database() -> URL:
    """A new empty PostgreSQL database with a unique name; returns its URL."""
    name = f"sdtest_{uuid.uuid4().hex[:16]}"
    server = make_url(PG_ADMIN_URL)
    create_server_database(server, name)
    return server.set(database=name)


def drop_pg_database(url: URL) -> None:
    """Drop a database made by :func:`create_pg_database` (only those: name is checked)."""
    name = url.database or ""
    assert name.startswith("sdtest_"), name
    drop_server_database(make_url(PG_ADMIN_URL), name)


@contextmanager
def fresh_database(dialect: str, tmp_path: Path) -> Iterator[URL]:
    """An empty database of ``dialect`` for the duration of the block."""
    if dialect == "sqlite":
        yield URL.create("sqlite", database=str(tmp_path / f"fresh_{uuid.uuid4().hex[:8]}.db"))
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)
