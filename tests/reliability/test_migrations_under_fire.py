"""Migrations under fire: concurrent migrators, and a revision that fails halfway.

* Two ``db init`` processes on a database that does not exist yet, and two ``db upgrade``
  processes on an empty one, released at the same instant: both succeed (the second waits for
  the first — PostgreSQL's advisory lock, SQLite's BEGIN IMMEDIATE — and finds the work done),
  and the schema is at head exactly once, with no drift from the models.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.db import make_engine
from swarm_director.schema import migrate
from swarm_director.schema.validate import compare_schema
from tests.dbtools import create_pg_database, drop_pg_database
from tests.reliability.conftest import url_text
from tests.reliability.procs import ROOT

HEAD = migrate.head_revision()


def _release_together(
    tmp_path: Path, commands: list[list[str]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands in processes that start them at the same instant."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.cli_at", str(go), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in commands
    ]
    time.sleep(0.2)
    # The processes import for a few seconds; releasing them early only makes them race less.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _all_waiting(procs):
        time.sleep(0.05)
    go.touch()
    results = []
    for proc, args in zip(procs, commands, strict=True):
        out, _ = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, ""))
    return results


def _all_waiting(procs: list[subprocess.Popen[str]]) -> bool:
    # A waiting process sleeps in its poll loop: its CPU time stops growing.
    return all(_cpu_ticks(p.pid) == _cpu_ticks(p.pid, delay=0.1) for p in procs)


def _cpu_ticks(pid: int, delay: float = 0.0) -> int:
    time.sleep(delay)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def two_urls(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[URL, URL]]:
    """A database that does not exist yet, and an empty one that does."""
    if dialect == "sqlite":
        missing = URL.create("sqlite", database=str(tmp_path / "new" / "missing.db"))
        empty_path = tmp_path / "empty.db"
        sqlite3.connect(empty_path).close()
        yield missing, URL.create("sqlite", database=str(empty_path))
        return
    empty = create_pg_database()
    missing = empty.set(database=f"{empty.database}_x")
    try:
        yield missing, empty
    finally:
        drop_pg_database(empty)
        drop_pg_database(missing)


def _assert_at_head_once(url: URL, expected_migrations: int) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            events = conn.execute(
                sa.text("SELECT operation, status FROM maintenance_events ORDER BY id")
            ).all()
        assert [v[0] for v in versions] == [HEAD]
        assert compare_schema(engine) == []
        assert [tuple(e) for e in events] == [("migrate", "ok")] * expected_migrations
    finally:
        engine.dispose()


def test_two_migrators_at_once_both_succeed(two_urls: tuple[URL, URL], tmp_path: Path) -> None:
    missing, empty = two_urls
    commands = [
        ["db", "init", "--database-url", url_text(missing)],
        ["db", "init", "--database-url", url_text(missing)],
        ["db", "upgrade", "--database-url", url_text(empty)],
        ["db", "upgrade", "--database-url", url_text(empty)],
    ]
    results = _release_together(tmp_path, commands)
    for result in results:
        assert result.returncode == 0, (result.args, result.stdout)
        assert "Traceback" not in result.stdout
    _assert_at_head_once(missing, 2)
    _assert_at_head_once(empty, 2)
