"""Fixtures for API tests: an app on an empty schema of each dialect, and its test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from swarm_director import create_app
from swarm_director.api.context import database

AppFactory = Callable[..., Flask]


def url_text(url: URL) -> str:
    """The URL as a string a new engine can use (``str(url)`` masks the password)."""
    return url.render_as_string(hide_password=False)


@pytest.fixture
def make_app(db_url: URL) -> Iterator[AppFactory]:
    """Builds apps on the test database with config overrides; disposes their engines."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "DATABASE_URL": url_text(db_url),
            "SWARM_API_TOKEN": None,
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
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
