"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

Without a reachable PostgreSQL the PostgreSQL half is skipped with the reason shown; under
``CI=true`` it is an error instead, so CI can never pass without testing PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director import models  # noqa: F401  (registers every table)
from swarm_director.db import Base, Database, make_engine
from swarm_director.db.partitions import ensure_partitions, list_partitions
from swarm_director.migrations import migrate
from tests.dbtools import IN_CI, create_pg_database, drop_pg_database, pg_unreachable_reason

DIALECTS = ["sqlite", "postgresql"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="run the long version of tests/reliability (same as SWARM_RELIABILITY_FULL=1)",
    )


@pytest.fixture(scope="session")
def pg_available() -> None:
    """Skips (or, in CI, fails) the PostgreSQL half when the server is not reachable."""
    reason = pg_unreachable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true requires PostgreSQL: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over both dialects."""
    name: str = request.param
    if name == "postgresql":
        request.getfixturevalue("pg_available")
    return name


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(URL.create("sqlite", database=str(path)))
    # Migrations, not create_all: a create_all on PostgreSQL marks the use_alter foreign key
    # as "never inline", so a later SQLite create_all in the same process would omit it.
    migrate.upgrade(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_schema_database(pg_available: None) -> Iterator[URL]:
    url = create_pg_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        _MIGRATED_PARTITIONS[url.database or ""] = _log_partitions(conn)
    engine.dispose()
    yield url
    drop_pg_database(url)


#: The log partitions each session's PostgreSQL schema database had once migrated, by name.
_MIGRATED_PARTITIONS: dict[str, dict[str, datetime | None]] = {}


def _log_partitions(conn: sa.Connection) -> dict[str, datetime | None]:
    return {p.name: p.lower for p in list_partitions(conn, "agent_logs")}


def _truncate_all(engine: sa.Engine) -> None:
    preparer = engine.dialect.identifier_preparer
    names = ", ".join(preparer.quote(t.name) for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        if engine.dialect.name == "postgresql":
            _restore_log_partitions(conn, _MIGRATED_PARTITIONS[engine.url.database or ""])


def _restore_log_partitions(conn: sa.Connection, migrated: dict[str, datetime | None]) -> None:
    """Put the log partitions back as the migration left them: a test's months (made by
    ``db maintain``, a retention test, a CLI run) would otherwise stay for the next test,
    whose retention would drop them too."""
    preparer = conn.dialect.identifier_preparer
    for name in set(_log_partitions(conn)) - set(migrated):
        conn.exec_driver_sql(f"DROP TABLE {preparer.quote(name)}")
    months = [lower for lower in migrated.values() if lower is not None]
    ensure_partitions(conn, "agent_logs", months)


@pytest.fixture
def db_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """URL of an empty database at the models' schema, of the test's dialect."""
    if dialect == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "test.db"
        shutil.copyfile(template, target)
        yield URL.create("sqlite", database=str(target))
        return
    url: URL = request.getfixturevalue("_pg_schema_database")
    engine = make_engine(url)
    _truncate_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def db(db_url: URL) -> Iterator[Database]:
    """A :class:`Database` on an empty schema, on SQLite and on PostgreSQL."""
    database = Database(make_engine(db_url))
    yield database
    database.dispose()
