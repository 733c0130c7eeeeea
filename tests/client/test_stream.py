"""Live tail over Server-Sent Events: records posted after the start arrive, a reconnect loses
and repeats nothing, `logs tail` prints them, shutdown closes streams cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from swarm_director.client import (
    Client,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from swarm_director.db import Database, make_engine
from swarm_director.models import ApiScope
from swarm_director.schemas import LogOut
from swarm_director.store import keys as key_store
from tests.client.servers import TOKEN, ServeProcess
from tests.serving import SWARM_DIRECTOR, request

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Tail:
    """``Client.follow_logs`` in a thread, collecting records."""

    def __init__(
        self, url: str, task_id: int | None, *, idle: float = 6, until: int = 0, **filters: object
    ) -> None:
        self.records: list[LogOut] = []
        self.client = Client(url, TOKEN)
        self.idle, self.until = idle, until
        self._thread = threading.Thread(target=self._run, args=(task_id, filters), daemon=True)
        self._thread.start()

    def _run(self, task_id: int | None, filters: dict[str, object]) -> None:
        follow = self.client.follow_logs(task_id, idle_timeout=self.idle, **filters)  # type: ignore[arg-type]
        for record in follow:
            self.records.append(record)
            if len(self.records) == self.until:
                break

    def wait_for(self, count: int, timeout: float = 30) -> list[LogOut]:
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.records)

    def stop(self) -> None:
        self._thread.join(timeout=30)
        self.client.close()


def _post(client: Client, task_id: int, messages: list[str], level: str = "info") -> None:
    rows = [{"agent_type": "tail", "message": m, "log_level": level} for m in messages]
    client.add_logs(task_id, rows)


def _events(response: httpx.Response, count: int) -> Iterator[tuple[str | None, str, str]]:
    """(id, event, data) of the first ``count`` events of a raw stream."""
    event_id, name, data, seen = None, "message", "", 0
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield event_id, name, data
            seen += 1
            name, data = "message", ""
            if seen == count:
                return


def test_follow_receives_records_posted_after_it_started(
    server: ServeProcess, client: Client
) -> None:
    task = client.create_task({"type": "analysis", "title": "tail"})
    other = client.create_task({"type": "analysis", "title": "other"})
    _post(client, task.id, ["before the tail"])
    tail = Tail(server.url, task.id)
    warnings = Tail(server.url, None, level="warning")
    time.sleep(1.0)  # both streams are open
    _post(client, task.id, [f"a{i}" for i in range(5)])
    _post(client, other.id, ["elsewhere"], level="warning")
    _post(client, task.id, ["b0"], level="error")
    got = tail.wait_for(6)
    assert [r.message for r in got] == [f"a{i}" for i in range(5)] + ["b0"]
    assert all(r.task_id == task.id for r in got)
    seen = warnings.wait_for(2)
    assert [r.message for r in seen if r.task_id in (task.id, other.id)] == ["elsewhere", "b0"]
    tail.stop()
    warnings.stop()
    assert len(tail.records) == 6  # nothing more arrived before the idle timeout


def test_a_raw_stream_resumes_after_last_event_id(server: ServeProcess, client: Client) -> None:
    task = client.create_task({"type": "analysis", "title": "resume"})
    path = f"{server.url}/api/tasks/{task.id}/logs/stream"
    with httpx.Client(headers=AUTH, timeout=10) as http:
        with http.stream("GET", path) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response, 3)
            ready = next(events)
            assert ready[1] == "ready" and json.loads(ready[2])["cursor"] == ready[0]
            _post(client, task.id, ["one", "two"])
            first = [next(events), next(events)]
        assert [json.loads(data)["message"] for _, _, data in first] == ["one", "two"]
        _post(client, task.id, ["three", "four"])  # while nobody listens
        with http.stream("GET", path, headers={"Last-Event-ID": first[0][0] or ""}) as response:
            again = list(_events(response, 4))[1:]  # after `ready`
        assert [json.loads(d)["message"] for _, _, d in again] == ["two", "three", "four"]
        with http.stream("GET", path, params={"cursor": again[-1][0]}) as response:
            ready_event = next(_events(response, 1))
        assert ready_event[0] == again[-1][0]


def test_stream_errors_are_typed(server: ServeProcess, client: Client) -> None:
    with pytest.raises(NotFoundError):
        next(iter(client.follow_logs(10**6)))
    with pytest.raises(ValidationError) as invalid:
        next(iter(client.follow_logs(level="loud")))
    assert "level" in invalid.value.fields
    with httpx.Client(headers=AUTH, timeout=10) as http:
        response = http.get(f"{server.url}/api/logs/stream", headers={"Last-Event-ID": "x"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"


def test_streams_are_bounded_per_process(database_url: URL, tmp_path: Path) -> None:
    # A server of its own: a stream another test left open (a generator not yet collected)
    # would hold a slot of the shared one for as long as its connection lives.
    env = {"SWARM_STREAM_MAX_PER_KEY": "10"}  # one token may open them all
    own = ServeProcess(database_url.render_as_string(hide_password=False), tmp_path, env=env)
    own.start()
    try:
        path = f"{own.url}/api/logs/stream"
        with httpx.Client(headers=AUTH, timeout=10) as http:
            opened = [http.stream("GET", path) for _ in range(6)]  # SWARM_STREAM_MAX_CLIENTS
            responses = [cm.__enter__() for cm in opened]
            try:
                assert [r.status_code for r in responses] == [200] * 6
                refused = http.get(path)
                assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
                assert http.get(f"{own.url}/api/tasks", params={"limit": 1}).status_code == 200
            finally:
                for cm in opened:
                    cm.__exit__(None, None, None)
        deadline = time.monotonic() + 10  # the slots are freed when the server notices
        while True:
            try:
                with Client(own.url, TOKEN) as probe:
                    next(iter(probe.follow_logs(idle_timeout=0.5)), None)
                break
            except UnavailableError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
    finally:
        own.stop()


def _open_raw(port: int) -> tuple[socket.socket, int]:
    """A stream on a plain socket (so closing it is only that); returns it and the status."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = f"GET /api/logs/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    sock.sendall(head.encode())
    status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return sock, int(status_line.split()[1])


def _reopen_within(port: int, closed: float, limit_s: float) -> tuple[socket.socket, int]:
    """A stream opened as soon as a slot is free, at most ``limit_s`` after ``closed``."""
    while (reopened := _open_raw(port))[1] != 200:
        reopened[0].close()
        assert time.monotonic() - closed < limit_s, f"no slot was freed within {limit_s} s"
        time.sleep(0.1)
    return reopened


def test_a_gone_client_frees_its_slot_within_a_poll(database_url: URL, tmp_path: Path) -> None:
    """Regression: a slot stayed taken after its client disconnected, until the next heartbeat
    failed to send (15 s by default; 60 s here)."""
    env = {"SWARM_STREAM_MAX_PER_KEY": "10", "SWARM_STREAM_HEARTBEAT_S": "60"}
    url = database_url.render_as_string(hide_password=False)
    # 12 threads: the fewest `serve` accepts for 6 streams (SWARM_STREAM_MAX_CLIENTS) and 2
    # exports (SWARM_EXPORT_MAX_CLIENTS).
    own = ServeProcess(url, tmp_path, env=env, threads=12).start()
    try:
        opened = [_open_raw(own.port) for _ in range(6)]
        assert [status for _, status in opened] == [200] * 6
        started = time.monotonic()  # every stream slot taken: requests still get a thread
        assert request(own.port, "GET", "/api/health", timeout=5)[0] == 200
        assert request(own.port, "GET", "/api/tasks?limit=1", token=TOKEN, timeout=5)[0] == 200
        assert time.monotonic() - started < 2
        extra, status = _open_raw(own.port)
        extra.close()
        assert status == 503
        for sock, _ in opened:
            sock.close()
        closed = time.monotonic()
        # Each stream notices its gone client on its own poll, so the slots come back one by
        # one: every one of them within 2 s (the heartbeat, which used to free them, is 60 s).
        again = [_reopen_within(own.port, closed, 2.0) for _ in range(6)]
        try:
            assert [status for _, status in again] == [200] * 6  # every slot came back
        finally:
            for sock, _ in again:
                sock.close()
    finally:
        own.stop()


def test_follow_with_a_revoked_key_stops_with_401(
    database_url: URL, server: ServeProcess, client: Client
) -> None:
    """Regression: a stream kept delivering for up to an hour after its key was revoked."""
    database = Database(make_engine(database_url))
    try:
        with database.transaction() as session:
            token = key_store.create_key(session, "tail-reader", ApiScope.READ).token
        task = client.create_task({"type": "analysis", "title": "revoked tail"})
        got: list[str] = []
        ended: list[BaseException] = []

        def follow() -> None:
            with Client(server.url, token) as reader:
                try:
                    for record in reader.follow_logs(task.id, idle_timeout=20):
                        got.append(record.message)
                except UnauthorizedError as error:
                    ended.append(error)

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            _post(client, task.id, ["while live"])
            time.sleep(0.3)
        assert got and set(got) == {"while live"}
        with database.transaction() as session:
            key_store.revoke_key(session, "tail-reader")
        _post(client, task.id, ["after the revocation"])
        thread.join(timeout=20)
        assert not thread.is_alive()
        assert "after the revocation" not in got
        assert [e.details.get("reason") for e in ended] == ["revoked"]
    finally:
        database.dispose()


def test_logs_tail_prints_records(server: ServeProcess, client: Client, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(TOKEN + "\n")
    task = client.create_task({"type": "analysis", "title": "cli tail"})
    marker = client.add_log(task.id, {"agent_type": "tail", "message": "already there"})
    # Started after the marker whenever it connects (a loaded machine takes seconds).
    args = ["logs", "tail", "--task", str(task.id), "--level", "warning", "--cursor"]
    args += [str(marker.id), "--url", server.url, "--token-file", str(key_file), "--idle-exit", "3"]
    process = subprocess.Popen(
        [*SWARM_DIRECTOR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _post(client, task.id, ["quiet"], level="info")
    _post(client, task.id, ["disk almost full"], level="warning")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert f"WARNING task {task.id} tail: disk almost full" in lines[0]


def test_tail_resumes_across_a_server_restart_without_loss_or_repeat(
    database_url: URL, tmp_path: Path
) -> None:
    own = ServeProcess(database_url.render_as_string(hide_password=False), tmp_path).start()
    try:
        with Client(own.url, TOKEN) as client:
            task = client.create_task({"type": "analysis", "title": "restart"})
            tail = Tail(own.url, task.id, idle=90, until=6)
            time.sleep(1.0)
            _post(client, task.id, [f"before {i}" for i in range(3)])
            assert len(tail.wait_for(3)) == 3
            own.kill()  # the stream breaks mid-way
            own.start()
            _post(client, task.id, [f"after {i}" for i in range(3)])
            got = tail.wait_for(6)
            tail.stop()
        expected = [f"before {i}" for i in range(3)] + [f"after {i}" for i in range(3)]
        assert [r.message for r in got] == expected
        assert len({r.id for r in got}) == 6
    finally:
        own.stop()


def test_shutdown_ends_open_streams_cleanly(database_url: URL, tmp_path: Path) -> None:
    own = ServeProcess(database_url.render_as_string(hide_password=False), tmp_path).start()
    with (
        httpx.Client(headers=AUTH, timeout=30) as http,
        http.stream("GET", f"{own.url}/api/logs/stream") as response,
    ):
        assert response.status_code == 200
        started = time.monotonic()
        code = own.stop(signal.SIGTERM)
        stopped = time.monotonic() - started
        rest = b"".join(response.iter_bytes())  # ends, not reset
    assert code == 0
    assert stopped < 8, f"took {stopped:.1f} s (graceful timeout is 10 s)"
    assert rest.startswith(b"retry: 1000\nid: ")  # the stream was read to its clean end
