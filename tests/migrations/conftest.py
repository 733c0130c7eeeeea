"""pytest-alembic's fixtures, wired to the package's migrations on both dialects.

``alembic_engine`` is an engine on a fresh, empty database of each dialect (the same
throwaway databases as every other test); ``alembic_config`` is the package's own Alembic
config (no ``alembic.ini``). pytest-alembic passes the engine to ``env.py`` through
``config.attributes["connection"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import Engine

from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from tests.dbtools import fresh_database


@pytest.fixture
def alembic_config() -> Config:
    """The package's Alembic config (script location inside the installed package)."""
    return migrate.alembic_config()


@pytest.fixture
def alembic_engine(dialect: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of the test's dialect, disposed afterwards."""
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url, create_dirs=True)
        try:
            yield engine
        finally:
            engine.dispose()
