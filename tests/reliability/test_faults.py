"""Faults: a full disk, a read-only database, a database that is gone and comes back, a write
lock held beyond the busy timeout.

Each fault is switched on under a running app (no restart) and off again. Passing means: the
API answers a clean JSON 503 (``unavailable``) — never a 500, never internals — for what the
fault prevents, and goes on serving what it does not; the failed transaction left nothing
behind; ``/api/ready`` says 503 while the database cannot be reached; the CLI fails with one
line (password masked); and the very same app works again once the fault is gone.

How the faults are made, without root or mounts:

* disk full — ``PRAGMA max_page_count`` pinned to the file's current size on every connection
  the app checks out (SQLite then fails exactly as on a full disk, ``SQLITE_FULL``);
* read-only — ``PRAGMA query_only`` on SQLite (``SQLITE_READONLY``, the error a read-only file
  gives) and ``default_transaction_read_only`` on PostgreSQL (what a hot standby answers);
* unreachable — the app talks to PostgreSQL through a TCP proxy the test takes down (every
  connection cut, connection refused) and brings back on the same port;
* locked — another connection holds SQLite's write lock longer than the busy timeout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.pool import Pool

from swarm_director import create_app
from swarm_director.cli.main import cli
from swarm_director.db import Database, make_engine
from swarm_director.models import AgentLog, Task
from swarm_director.store import logs
from swarm_director.web.context import database
from tests.reliability.conftest import url_text
from tests.reliability.procs import proxy_to

SECRET = "pw-s3cr3t-Zq9"
BIG_BATCH = [{"agent_type": "fault", "message": "x" * 2000}] * 500


class Fault:
    """Injects a fault into every connection of one database the process checks out."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.dialect = url.get_backend_name()
        self.max_pages: int | None = None
        self.read_only = False

    def _applies(self, dbapi_conn: Any) -> bool:
        if self.dialect == "sqlite":
            if not isinstance(dbapi_conn, sqlite3.Connection):
                return False
            row = dbapi_conn.execute("PRAGMA database_list").fetchone()
            return bool(row) and Path(row[2]) == Path(str(self.url.database))
        info = getattr(dbapi_conn, "info", None)
        return getattr(info, "dbname", None) == self.url.database

    def on_checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if not self._applies(dbapi_conn):
            return
        if self.dialect == "sqlite":
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            limit = pages if self.max_pages is not None else 2_147_483_646
            dbapi_conn.execute(f"PRAGMA max_page_count={limit:d}")
            dbapi_conn.execute(f"PRAGMA query_only={int(self.read_only):d}")
        else:
            value = "on" if self.read_only else "off"
            dbapi_conn.execute(f"SET default_transaction_read_only = {value}")
            dbapi_conn.commit()


@contextmanager
def injected(url: URL) -> Iterator[Fault]:
    fault = Fault(url)
    event.listen(Pool, "checkout", fault.on_checkout)
    try:
        yield fault
    finally:
        event.remove(Pool, "checkout", fault.on_checkout)


@pytest.fixture
def client(migrated_url: URL) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": url_text(migrated_url), "SWARM_API_TOKEN": None})
    try:
        yield app.test_client()
    finally:
        database(app).dispose()


def _count(url: URL, model: Any) -> int:
    engine = make_engine(url)
    try:
        # A read-only transaction: it must work while the fault refuses writes.
        with engine.execution_options(read_only=True).connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def unavailable(response: Any) -> dict[str, Any]:
    """Assert a clean JSON 503 in the one error shape; return the error object."""
    body = response.get_json()
    assert response.status_code == 503, (response.status_code, body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "unavailable", body
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "SELECT", "INSERT", "sqlite3", "psycopg", SECRET):
        assert leak not in text, text
    error: dict[str, Any] = body["error"]
    return error


def _task(client: FlaskClient) -> int:
    response = client.post("/api/tasks", json={"type": "analysis", "title": "fault"})
    assert response.status_code == 201, response.get_json()
    task_id: int = response.get_json()["id"]
    return task_id


def test_disk_full_is_503_rolls_back_and_recovers(
    client: FlaskClient, migrated_url: URL, dialect: str
) -> None:
    if dialect != "sqlite":
        pytest.skip("a full disk is simulated with SQLite's max_page_count")
    task_id = _task(client)
    with injected(migrated_url) as fault:
        fault.max_pages = 0  # pinned to the current size
        unavailable(client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH))
        assert _count(migrated_url, AgentLog) == 0, "a failed batch left rows behind"
        assert client.get(f"/api/tasks/{task_id}").status_code == 200  # reads still work
        assert client.get("/api/ready").status_code == 200  # reachable and at head
        fault.max_pages = None  # space freed
        response = client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH)
        assert response.status_code == 201, response.get_json()
    assert _count(migrated_url, AgentLog) == len(BIG_BATCH)


def test_read_only_database_is_503_and_recovers(client: FlaskClient, migrated_url: URL) -> None:
    task_id = _task(client)
    with injected(migrated_url) as fault:
        fault.read_only = True
        unavailable(client.post("/api/tasks", json={"type": "analysis", "title": "ro"}))
        unavailable(client.patch(f"/api/tasks/{task_id}", json={"status": "in_progress"}))
        unavailable(client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH[:10]))
        assert client.get("/api/tasks").status_code == 200
        fault.read_only = False
        response = client.patch(f"/api/tasks/{task_id}", json={"status": "in_progress"})
        assert response.status_code == 200, response.get_json()
    assert _count(migrated_url, Task) == 1
    assert _count(migrated_url, AgentLog) == 0


def test_cli_fails_in_one_line_on_a_read_only_database(migrated_url: URL) -> None:
    with injected(migrated_url) as fault:
        fault.read_only = True
        result = CliRunner().invoke(cli, ["db", "seed", "--database-url", url_text(migrated_url)])
        assert result.exit_code == 1, result.output
        _one_line_error(result.output)
        assert _count(migrated_url, Task) == 0, "a failed seed left rows behind"
        fault.read_only = False
        result = CliRunner().invoke(cli, ["db", "seed", "--database-url", url_text(migrated_url)])
        assert result.exit_code == 0, result.output
    assert _count(migrated_url, Task) > 0


def test_cli_fails_in_one_line_on_a_full_disk(migrated_url: URL, dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("a full disk is simulated with SQLite's max_page_count")
    args = ["db", "seed", "--scale", "20", "--database-url", url_text(migrated_url)]
    with injected(migrated_url) as fault:
        fault.max_pages = 0
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        _one_line_error(result.output)
        assert "full" in result.output
        fault.max_pages = None
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output


def _one_line_error(output: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "no error message"
    assert len(lines) == 1 and lines[-1].startswith("Error: "), output
    assert "Traceback" not in output and SECRET not in output


def _proxied(url: URL, port: int) -> URL:
    return url.set(host="127.0.0.1", port=port, password=SECRET)


def test_unreachable_postgresql_is_503_until_it_comes_back(migrated_url: URL, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite is a file opened by the process itself: it cannot go away")
    target = (migrated_url.host or "127.0.0.1", migrated_url.port or 5432)
    with proxy_to(target) as proxy:
        url = _proxied(migrated_url, proxy.port)
        app = create_app({"DATABASE_URL": url_text(url), "SWARM_API_TOKEN": None})
        client = app.test_client()
        try:
            task_id = _task(client)
            proxy.down()
            unavailable(client.get("/api/tasks"))
            unavailable(client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH[:10]))
            error = unavailable(client.get("/api/ready"))
            assert "127.0.0.1" not in error["message"]
            assert client.get("/api/health").status_code == 200  # the process is alive
            proxy.up()
            assert client.get("/api/ready").status_code == 200
            response = client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH[:10])
            assert response.status_code == 201, response.get_json()
        finally:
            database(app).dispose()
    assert _count(migrated_url, AgentLog) == 10


def test_a_connection_lost_before_commit_stores_nothing(migrated_url: URL, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("needs a network connection to cut")
    target = (migrated_url.host or "127.0.0.1", migrated_url.port or 5432)
    with proxy_to(target) as proxy:
        db = Database(make_engine(_proxied(migrated_url, proxy.port)))
        try:
            with db.transaction() as session:
                session.add(Task(type="analysis", title="before", status="pending"))
            with pytest.raises(sa.exc.DBAPIError), db.transaction() as session:
                task = session.scalars(sa.select(Task)).one()
                logs.add_logs(session, task.id, BIG_BATCH)
                proxy.down()
            proxy.up()
            with db.read() as session:
                assert session.scalar(sa.select(sa.func.count()).select_from(AgentLog)) == 0
                assert session.scalar(sa.select(sa.func.count()).select_from(Task)) == 1
        finally:
            db.dispose()


def test_cli_fails_in_one_line_when_postgresql_is_unreachable(migrated_url: URL) -> None:
    if migrated_url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only")
    with proxy_to((migrated_url.host or "127.0.0.1", migrated_url.port or 5432)) as proxy:
        url = url_text(_proxied(migrated_url, proxy.port))
        proxy.down()
        for command in (["db", "status"], ["db", "current"], ["db", "upgrade"], ["db", "seed"]):
            result = CliRunner().invoke(cli, [*command, "--database-url", url])
            assert result.exit_code == 1, (command, result.output)
            _one_line_error(result.output)
        proxy.up()
        result = CliRunner().invoke(cli, ["db", "current", "--database-url", url])
        assert result.exit_code == 0, result.output


def test_write_lock_held_too_long_is_503_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    url = URL.create("sqlite", database=str(path))
    from swarm_director.migrations import migrate

    engine = make_engine(url)
    migrate.upgrade(engine, "head")
    engine.dispose()
    app = create_app(
        {"DATABASE_URL": url_text(url), "SWARM_API_TOKEN": None, "SWARM_SQLITE_BUSY_TIMEOUT": 0.3}
    )
    client = app.test_client()
    try:
        task_id = _task(client)
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # e.g. a long maintenance job
            unavailable(client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH[:10]))
            assert client.get(f"/api/tasks/{task_id}/logs").status_code == 200  # WAL readers
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        response = client.post(f"/api/tasks/{task_id}/logs", json=BIG_BATCH[:10])
        assert response.status_code == 201, response.get_json()
    finally:
        database(app).dispose()
