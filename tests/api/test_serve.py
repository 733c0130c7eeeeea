"""``swarm-director serve``: database preparation, refusal below head, and the real server."""

from __future__ import annotations

import builtins
import http.client
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli import serve
from swarm_director.cli.main import cli
from swarm_director.cli.serve import bind_address, prepare_database
from swarm_director.config import Settings
from swarm_director.db import Database
from swarm_director.errors import SchemaError
from swarm_director.migrations import migrate
from tests.api.conftest import url_text
from tests.serving import ServeProcess, free_port, serve_env

SERVE_TOKEN = "t0ken-for-the-serve-test"


@pytest.fixture
def embedded_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SWARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SWARM_ENV", "development")
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path / "data"


def test_embedded_default_is_created_and_migrated_on_first_start(embedded_env: Path) -> None:
    settings = Settings()
    assert settings.is_embedded_default
    assert "Created the embedded database" in prepare_database(settings)
    database = Database.from_settings(settings)
    try:
        assert migrate.is_at_head(database.engine)
    finally:
        database.dispose()
    assert "Using the embedded database" in prepare_database(settings)


def test_other_databases_below_head_are_refused(behind_head_url: URL) -> None:
    settings = Settings(DATABASE_URL=url_text(behind_head_url))
    with pytest.raises(SchemaError, match="swarm-director db upgrade"):
        prepare_database(settings)


def test_serve_refuses_in_one_line(behind_head_url: URL) -> None:
    args = ["serve", "--database-url", url_text(behind_head_url), "--port", str(free_port())]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "swarm-director db upgrade" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_missing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    result = CliRunner().invoke(cli, ["serve", "--database-url", url])
    assert result.exit_code == 1
    assert "swarm-director db init" in result.output


@pytest.mark.parametrize(
    ("threads", "streams", "exports", "starts"),
    [
        (24, 24, 2, False),
        (29, 24, 2, False),
        (30, 24, 2, True),
        (11, 6, 2, False),
        (12, 6, 2, True),
        (11, 6, 1, True),
    ],
)
def test_serve_refuses_threads_that_streams_could_all_take(
    embedded_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    threads: int,
    streams: int,
    exports: int,
    starts: bool,
) -> None:
    """Regression: with --threads at or below SWARM_STREAM_MAX_CLIENTS, open log streams took
    every thread and /api/health timed out; serve only warned and started anyway. Exports
    hold a thread each too."""
    started: list[int] = []
    monkeypatch.setattr(serve, "run_gunicorn", lambda *a, **kw: started.append(kw["threads"]))
    monkeypatch.setenv("SWARM_STREAM_MAX_CLIENTS", str(streams))
    monkeypatch.setenv("SWARM_EXPORT_MAX_CLIENTS", str(exports))
    result = CliRunner().invoke(cli, ["serve", "--threads", str(threads)])
    if starts:
        assert result.exit_code == 0, result.output
        assert started == [threads]
        return
    assert result.exit_code == 1
    assert started == []
    assert not embedded_env.exists()  # nothing done: not even the database created
    (line,) = result.output.splitlines()
    assert f"SWARM_STREAM_MAX_CLIENTS={streams}" in line
    assert f"SWARM_EXPORT_MAX_CLIENTS={exports}" in line
    assert f"--threads {streams + exports + serve.REQUEST_THREADS} or more" in line


def test_bind_address() -> None:
    assert bind_address("127.0.0.1", 5000) == "127.0.0.1:5000"
    assert bind_address("::1", 8080) == "[::1]:8080"


@pytest.fixture
def server(embedded_env: Path) -> Iterator[int]:
    """The real thing: `swarm-director serve` in a subprocess, on the embedded default."""
    env = serve_env({"SWARM_API_TOKEN": SERVE_TOKEN, "SWARM_MAX_REQUEST_BYTES": "2000"})
    process = ServeProcess(None, embedded_env.parent, env=env)
    with process:
        yield process.port
    assert process.stop() == 0, process.output()


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_real_server_round_trip(server: int) -> None:
    """Starts, migrates the embedded database, enforces the token, stores, caps bodies."""
    auth = {"Authorization": f"Bearer {SERVE_TOKEN}", "Content-Type": "application/json"}
    assert _request(server, "GET", "/api/health")[0] == 200
    assert _request(server, "GET", "/api/tasks")[0] == 401
    status, ready = _request(server, "GET", "/api/ready", headers=auth)
    assert status == 200 and ready["revision"] == migrate.head_revision()
    body = json.dumps({"type": "analysis", "title": "over HTTP"}).encode()
    status, task = _request(server, "POST", "/api/tasks", body, auth)
    assert status == 201
    status, got = _request(server, "GET", f"/api/tasks/{task['id']}", headers=auth)
    assert status == 200 and got["title"] == "over HTTP"
    _chunked_body_is_capped(server)


def _chunked_body_is_capped(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        chunks = (b'{"title": "' + b"x" * 1000 + b'"}' for _ in range(5))
        conn.request(
            "POST",
            "/api/tasks",
            body=chunks,
            headers={"Authorization": f"Bearer {SERVE_TOKEN}", "Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "payload_too_large"
    finally:
        conn.close()


def test_ctrl_c_stops_a_worker_like_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master sends SIGQUIT to its workers on Ctrl-C. gunicorn's handler raises
    SystemExit wherever the worker's main thread is (seen in a server log as "Exception
    ignored ... Traceback" when that was a garbage-collector callback); ours stops the worker
    the graceful way: it stops accepting and ends its open streams, and raises nothing.

    Neither handler imports anything: a signal that lands while the worker is still importing
    the app ran an import inside the handler and failed on a half-initialised module."""
    from swarm_director.api import streams
    from swarm_director.cli.serve import StreamingThreadWorker

    shutdown = threading.Event()
    monkeypatch.setattr(streams, "SHUTDOWN", shutdown)  # the process's own stays clear
    interrupted: list[object] = []
    woken: list[object] = []
    worker = object.__new__(StreamingThreadWorker)  # the signal handlers need no socket
    worker.alive = True
    worker.cfg = SimpleNamespace(worker_int=interrupted.append)
    worker.method_queue = SimpleNamespace(defer=woken.append)  # wakes the worker's poller
    worker.tpool = SimpleNamespace(shutdown=lambda wait=True: None)  # gunicorn's handler uses it
    worker._end_streams = streams.begin_shutdown  # what init_process sets after the fork

    def no_import(*args: object, **kwargs: object) -> None:
        raise ImportError("a signal handler imported a module")

    monkeypatch.setattr(builtins, "__import__", no_import)
    try:
        worker.handle_quit(signal.SIGQUIT, None)
    finally:
        monkeypatch.undo()

    assert worker.alive is False
    assert shutdown.is_set()
    assert interrupted == [worker]
    assert len(woken) == 1
