"""Migrations under fire: concurrent migrators, and a revision that fails halfway.

* Two ``db init`` processes on a database that does not exist yet, and two ``db upgrade``
  processes on an empty one, released at the same instant: both succeed (the second waits for
  the first — PostgreSQL's advisory lock, SQLite's BEGIN IMMEDIATE — and finds the work done),
  and the schema is at head exactly once, with no drift from the models.
* A revision that fails after doing part of its work: the command fails with a message that
  says so in one line; the database is left exactly where it was (every revision of one call
  runs in one transaction); ``db current`` and ``db upgrade`` still handle it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.ops.checks.schema_drift import compare_schema
from tests.dbtools import create_pg_database, drop_pg_database
from tests.reliability.conftest import Scale, url_text
from tests.serving import ROOT

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


def test_two_migrators_at_once_both_succeed(
    two_urls: tuple[URL, URL], tmp_path: Path, scale: Scale
) -> None:
    """Two `db init` on a database that does not exist yet; in the full run also two
    `db upgrade` on an empty one at the same instant (four processes racing)."""
    missing, empty = two_urls
    commands = [["db", "init", "--database-url", url_text(missing)]] * 2
    if scale.full:
        commands += [["db", "upgrade", "--database-url", url_text(empty)]] * 2
    results = _release_together(tmp_path, commands)
    for result in results:
        assert result.returncode == 0, (result.args, result.stdout)
        assert "Traceback" not in result.stdout
    _assert_at_head_once(missing, 2)
    if scale.full:
        _assert_at_head_once(empty, 2)


BROKEN_REVISION = '''"""A revision that fails halfway (test only).

Revision ID: 005_broken
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "005_broken"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("half_done", sa.Integer(), nullable=True))
    op.execute("UPDATE agents SET half_done = 1")
    {failure}


def downgrade() -> None:
    pass
'''

FAILURES = {
    "sql": 'op.execute("INSERT INTO no_such_table (id) VALUES (1)")',
    "python": 'raise RuntimeError("revision 005 is broken")',
}


@contextmanager
def broken_history(tmp_path: Path, failure: str) -> Iterator[None]:
    """The package's migrations plus a revision 005 that fails after doing some work."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "005_broken.py").write_text(
        BROKEN_REVISION.format(head=HEAD, failure=FAILURES[failure])
    )
    original = migrate.MIGRATIONS_DIR
    migrate.MIGRATIONS_DIR = scripts
    migrate._script.cache_clear()
    try:
        yield
    finally:
        migrate.MIGRATIONS_DIR = original
        migrate._script.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _schema_facts(url: URL) -> tuple[str | None, bool, bool, int]:
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        columns = (
            {c["name"] for c in inspector.get_columns("agents")} if "agents" in tables else set()
        )
        with engine.connect() as conn:
            agents = (
                conn.scalar(sa.text("SELECT count(*) FROM agents")) if "agents" in tables else 0
            )
        return (
            migrate.current_revision(engine),
            "half_done" in tables,
            "half_done" in columns,
            int(agents or 0),
        )
    finally:
        engine.dispose()


@pytest.mark.parametrize(("failure", "start"), [("sql", "head"), ("python", "empty")])
def test_a_migration_failing_midway_changes_nothing(
    migrated_url: URL, tmp_path: Path, failure: str, start: str
) -> None:
    url = url_text(migrated_url)
    if start == "empty":
        engine = make_engine(migrated_url)
        migrate.downgrade(engine, "base")
        engine.dispose()
    else:
        code, output = _run("db", "seed", "--database-url", url)
        assert code == 0, output
    before = _schema_facts(migrated_url)

    with broken_history(tmp_path, failure):
        code, output = _run("db", "upgrade", "--database-url", url)
        assert code == 1, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), output
        assert "failed in revision 005_broken and was rolled back" in lines[0], output
        assert f"still at {before[0] or 'base (empty)'}" in lines[0], output
        assert _schema_facts(migrated_url) == before, "a failed migration left changes behind"

        code, output = _run("db", "current", "--json", "--database-url", url)
        assert code == 0, output
        current = json.loads(output)
        assert current["current"] == before[0] and current["head"] == "005_broken"

    # Without the broken revision (its fix shipped), the same database upgrades normally.
    code, output = _run("db", "upgrade", "--database-url", url)
    assert code == 0, output
    code, output = _run("db", "current", "--database-url", url)
    assert code == 0 and output.strip() == f"{HEAD} (at head)", output
