"""One real ``swarm-director serve`` per test module and dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from swarm_director.client import Client
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from tests.client.servers import TOKEN, ServeProcess
from tests.dbtools import create_pg_database, drop_pg_database


def _migrated(url: URL) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    """A migrated database of each dialect, for one module."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
        url = create_pg_database()
        try:
            _migrated(url)
            yield url
        finally:
            drop_pg_database(url)
        return
    path = tmp_path_factory.mktemp("client-db") / "client.db"
    url = URL.create("sqlite", database=str(path))
    _migrated(url)
    yield url


@pytest.fixture(scope="module")
def server(database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """``swarm-director serve`` on that database, with a token and short stream intervals."""
    process = ServeProcess(
        database_url.render_as_string(hide_password=False), tmp_path_factory.mktemp("serve")
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(server: ServeProcess) -> Iterator[Client]:
    with Client(server.url, TOKEN, timeout=15) as c:
        yield c


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
