"""Fixtures for API tests: an app on an empty schema of each dialect, and its test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from swarm_director import create_app
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.web.context import database
from tests.dbtools import fresh_database

AppFactory = Callable[..., Flask]


#: App settings under which a live-tail stream ends after 50 ms (polling every 20 ms), so a
#: generated request to a stream endpoint returns at once.
SHORT_STREAMS = {
    "SWARM_STREAM_MAX_S": 0.05,
    "SWARM_STREAM_POLL_S": 0.02,
    "SWARM_CLAIM_MAX_WAIT_S": 0.05,
}


def url_text(url: URL) -> str:
    """The URL as a string a new engine can use (``str(url)`` masks the password)."""
    return url.render_as_string(hide_password=False)


@pytest.fixture
def make_app(db_url: URL, tmp_path: Path) -> Iterator[AppFactory]:
    """Builds apps on the test database with config overrides; disposes their engines. The
    data folder (where the console keeps its generated signing key) is the test's own."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "DATABASE_URL": url_text(db_url),
            "SWARM_API_TOKEN": None,
            "SWARM_DATA_DIR": str(tmp_path / "data"),
            "TESTING": True,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        database(app).dispose()


@pytest.fixture
def behind_head_url(dialect: str, tmp_path: Path) -> Iterator[URL]:
    """A database one migration behind head."""
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url, create_dirs=True)
        try:
            migrate.upgrade(engine, migrate.history()[-2].revision)
        finally:
            engine.dispose()
        yield url


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
