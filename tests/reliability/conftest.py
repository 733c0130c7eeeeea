"""Fixtures of the reliability suite: quick or full scale, migrated databases, figures.

The default test command runs every test here at a quick, bounded scale. ``--full`` (or
``SWARM_RELIABILITY_FULL=1``) runs the long version: more kills, more processes, longer runs.
Figures (kills survived, rows checked, latencies) are printed (``pytest -s``) and collected in
``reliability-figures.json`` under pytest's temporary directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from tests.dbtools import fresh_database

_HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: tests/reliability (crash, faults, ...)")


#: Tests whose quick run leaves out some of their generated cases: (test name, id part).
#: The stateless schemathesis run sends every operation through every check, coverage phase
#: included; its quick run keeps the operations that create or change data (POST, PATCH).
_QUICK_LEAVES_OUT = [
    ("test_every_operation_passes_every_default_check", "[GET "),
    ("test_every_operation_passes_every_default_check", "[DELETE "),
    # The failing-midway migration: on PostgreSQL the quick run keeps "bad SQL, from head".
    ("test_a_migration_failing_midway_changes_nothing", "[postgresql-python-empty]"),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    full = is_full(config)
    kept, left_out = [], []
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.reliability)
            name = item.name.split("[", 1)[0]
            if not full and any(n == name and part in item.name for n, part in _QUICK_LEAVES_OUT):
                left_out.append(item)
                continue
        kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def is_full(config: pytest.Config) -> bool:
    """True for the long run: ``--full`` or ``SWARM_RELIABILITY_FULL=1``."""
    env = os.environ.get("SWARM_RELIABILITY_FULL", "").strip().lower()
    return bool(config.getoption("--full", default=False)) or env in ("1", "true", "yes")


@dataclass(frozen=True)
class Scale:
    """How hard each test pushes; ``quick`` keeps the default test command short."""

    full: bool
    crash_store_kills: int
    crash_http_kills: int
    contention_writers: int
    contention_readers: int
    contention_seconds: float
    hypothesis_examples: int
    api_examples: int


QUICK = Scale(
    full=False,
    crash_store_kills=2,
    crash_http_kills=1,
    contention_writers=2,
    contention_readers=1,
    contention_seconds=2.0,
    hypothesis_examples=10,
    api_examples=1,
)
FULL = Scale(
    full=True,
    crash_store_kills=30,
    crash_http_kills=20,
    contention_writers=4,
    contention_readers=2,
    contention_seconds=60.0,
    hypothesis_examples=300,
    api_examples=20,
)


def quick_dialects(config: pytest.Config) -> list[str]:
    """Dialects for tests whose quick run covers one dialect (the full run covers both)."""
    return ["sqlite", "postgresql"] if is_full(config) else ["sqlite"]


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    """The quick or the full scale."""
    return FULL if is_full(pytestconfig) else QUICK


class Figures:
    """Numbers the tests measured, printed and saved as JSON for docs/reliability.md."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def record(self, name: str, values: dict[str, Any]) -> None:
        self.data[name] = values
        print(f"\n[reliability] {name}: {json.dumps(values, sort_keys=True)}")
        self.path.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def figures(tmp_path_factory: pytest.TempPathFactory, scale: Scale) -> Iterator[Figures]:
    path = tmp_path_factory.getbasetemp() / "reliability-figures.json"
    collected = Figures(path)
    collected.data["scale"] = "full" if scale.full else "quick"
    yield collected
    print(f"\n[reliability] figures written to {path}")


def url_text(url: URL) -> str:
    """The URL with its password, as a string another process can use."""
    return url.render_as_string(hide_password=False)


@contextmanager
def migrated_database(dialect: str, tmp_path: Path) -> Iterator[URL]:
    """A fresh database of ``dialect``, migrated to head (what `db init` makes)."""
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine, "head")
        finally:
            engine.dispose()
        yield url


@pytest.fixture
def migrated_url(dialect: str, tmp_path: Path) -> Iterator[URL]:
    """A fresh database of the test's dialect, migrated to head."""
    with migrated_database(dialect, tmp_path) as url:
        yield url
