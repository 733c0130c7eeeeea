"""Fixtures for the operations tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm_director.db import Database, make_engine
from swarm_director.migrations import migrate
from tests.dbtools import fresh_database


@pytest.fixture
def own_db(dialect: str, tmp_path: Path) -> Iterator[Database]:
    """A database of its own (not the shared per-session one) that a test may damage."""
    with fresh_database(dialect, tmp_path) as url:
        database = Database(make_engine(url))
        # Migrations, not create_all (see tests/conftest.py): a create_all on PostgreSQL keeps
        # the tasks <-> conversations foreign key out of later SQLite DDL in this process.
        migrate.upgrade(database.engine)
        try:
            yield database
        finally:
            database.dispose()
