"""Fixtures of the replication tests: a primary and a streaming standby of their own per
module (PostgreSQL only; never the shared server), and apps that read from the standby."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from swarm_director import create_app
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.web.context import database
from tests.dbtools import IN_CI
from tests.replication.cluster import (
    Server,
    make_primary,
    make_standby,
    replay_caught_up,
    unavailable_reason,
    wait_until,
)

AppFactory = Callable[..., Flask]


def require_servers() -> None:
    """Skip (fail under CI=true) where no throwaway PostgreSQL server can be made."""
    reason = unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true requires the PostgreSQL server package: {reason}")
    pytest.skip(reason)


def migrated_primary(extra: list[str] | None = None) -> Server:
    primary = make_primary(extra=extra)
    try:
        engine = make_engine(primary.url())
        migrate.upgrade(engine)
        engine.dispose()
    except BaseException:
        primary.remove()
        raise
    return primary


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Server, Server]]:
    """A migrated primary and its streaming standby (asynchronous replication)."""
    require_servers()
    primary = migrated_primary()
    try:
        standby = make_standby(primary)
        try:
            yield primary, standby
        finally:
            standby.remove()
    finally:
        primary.remove()


def in_sync(primary: Server, standby: Server) -> None:
    """Resume replay and wait until the standby has replayed everything."""
    standby.sql("SELECT pg_wal_replay_resume()")
    wait_until(lambda: replay_caught_up(primary, standby), 30, "the standby to catch up")


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Builds apps with config overrides; disposes their engines (and replica monitors)."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = create_app(
            {"SWARM_API_TOKEN": None, "SWARM_DATA_DIR": str(tmp_path / "data"), **config}
        )
        apps.append(app)
        return app

    yield factory
    for app in apps:
        database(app).dispose()
