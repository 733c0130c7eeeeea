"""Reads from a streaming standby, read-your-writes, and replicas skipped when they lag.

One primary and one standby for the module (see ``conftest.pair``); each test leaves the
standby replaying and caught up.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from flask import Flask

from swarm_director.client import Client
from swarm_director.client.errors import NotFoundError
from swarm_director.web.context import database
from tests.replication.cluster import Server, wait_until
from tests.replication.conftest import AppFactory, in_sync

pytestmark = pytest.mark.replication

READS_APP = "sd-replica-reads"
PRIMARY_APP = "sd-primary"


@pytest.fixture
def replica_app(pair: tuple[Server, Server], make_app: AppFactory) -> Iterator[Flask]:
    primary, standby = pair
    in_sync(primary, standby)
    app = make_app(
        DATABASE_URL=f"{primary.url_text()}?application_name={PRIMARY_APP}",
        SWARM_REPLICA_URLS=f"{standby.url_text()}?application_name={READS_APP}",
        SWARM_REPLICA_CHECK_S=0.1,
        # Generous for a loaded machine: replay may take a while, and a paused standby must
        # stay usable (a little stale) for the length of a test.
        SWARM_REPLICA_WAIT_S=1.0,
        SWARM_REPLICA_MAX_LAG_S=30,
    )
    replicas = database(app).replicas
    assert replicas is not None
    replicas.check()
    assert [s.state(replicas.max_lag_s) for s in replicas.statuses()] == ["ok"]
    yield app
    in_sync(primary, standby)


def _client(app: Flask) -> Client:
    return Client("http://app", transport=httpx.WSGITransport(app=app))


def _statements(server: Server, app_name: str, since: int) -> list[str]:
    """Statements the server logged for connections named ``app_name`` (log_statement=all),
    from byte ``since`` of its log on."""
    entries = re.split(r"(?m)^(?=\d{4}-\d\d-\d\d )", server.log()[since:])
    return [" ".join(e.split()) for e in entries if f"app={app_name} " in e and "LOG: " in e]


def test_reads_land_on_the_standby_and_writes_on_the_primary(
    pair: tuple[Server, Server], replica_app: Flask
) -> None:
    primary, standby = pair
    marks = len(primary.log()), len(standby.log())
    with _client(replica_app) as client:
        task = client.create_task({"type": "analysis", "title": "routed"})
        assert client.get_task(task.id).title == "routed"  # served once the standby replayed it
        listed = client.list_tasks(limit=5, status="pending")
        assert task.id in [t.id for t in listed.items]
    on_primary = _statements(primary, PRIMARY_APP, marks[0])
    on_standby = _statements(standby, READS_APP, marks[1])
    assert any("INSERT INTO tasks" in line for line in on_primary), on_primary
    assert not any("INSERT" in line for line in on_standby), on_standby
    assert any("FROM tasks" in line and "tasks.status" in line for line in on_standby), on_standby
    assert not any("FROM tasks" in line and "tasks.status" in line for line in on_primary)


def test_read_your_writes_while_the_standby_replay_is_paused(
    pair: tuple[Server, Server], replica_app: Flask
) -> None:
    _primary, standby = pair
    standby.sql("SELECT pg_wal_replay_pause()")
    wait_until(lambda: standby.sql("SELECT pg_is_wal_replay_paused()")[0][0], 10, "pause")
    with _client(replica_app) as writer, _client(replica_app) as stranger:
        task = writer.create_task({"type": "analysis", "title": "mine"})
        assert writer.positions.position is not None
        # The writer sends its position back: the paused standby has not replayed it, so the
        # read waits briefly and is then served by the primary.
        assert writer.get_task(task.id).title == "mine"
        logs = writer.add_logs(task.id, [{"agent_type": "w", "message": "first"}])
        assert [r.message for r in writer.list_task_logs(task.id).items] == ["first"]
        assert logs
        # A client without the position is served by the standby, which has not seen it.
        with pytest.raises(NotFoundError):
            stranger.get_task(task.id)
    standby.sql("SELECT pg_wal_replay_resume()")
    with _client(replica_app) as stranger:
        wait_until(lambda: stranger.get_task(task.id).title == "mine", 10, "replay")


def test_a_malformed_position_is_refused(replica_app: Flask) -> None:
    response = replica_app.test_client().get(
        "/api/tasks", headers={"X-Swarm-LSN": "not-a-position"}
    )
    assert response.status_code == 422
    assert "X-Swarm-LSN" in response.get_json()["error"]["message"]


def test_writes_answer_with_their_commit_position(replica_app: Flask) -> None:
    http = replica_app.test_client()
    first = http.post("/api/tasks", json={"type": "analysis", "title": "a"})
    second = http.post("/api/tasks", json={"type": "analysis", "title": "b"})
    read = http.get("/api/tasks")
    hi1, lo1 = (int(part, 16) for part in first.headers["X-Swarm-LSN"].split("/"))
    hi2, lo2 = (int(part, 16) for part in second.headers["X-Swarm-LSN"].split("/"))
    assert (hi2, lo2) > (hi1, lo1)
    assert "X-Swarm-LSN" not in read.headers


def test_a_lagging_replica_is_skipped_and_shown_on_ready(
    pair: tuple[Server, Server], make_app: AppFactory
) -> None:
    primary, standby = pair
    in_sync(primary, standby)
    app = make_app(
        DATABASE_URL=primary.url_text(),
        SWARM_REPLICA_URLS=standby.url_text(),
        SWARM_REPLICA_CHECK_S=0.1,
        SWARM_REPLICA_MAX_LAG_S=0.5,
    )
    http = app.test_client()
    ready = http.get("/api/ready").get_json()
    assert [(r["state"], r["lag_s"]) for r in ready["replicas"]] == [("ok", 0.0)]
    standby.sql("SELECT pg_wal_replay_pause()")
    try:
        created = http.post("/api/tasks", json={"type": "analysis", "title": "fresh"})
        task_id = created.get_json()["id"]
        http.get("/api/tasks")  # starts the monitor
        deadline = time.monotonic() + 10
        while True:
            (row,) = http.get("/api/ready").get_json()["replicas"]
            if row["state"] == "lagging" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert row["state"] == "lagging", row
        assert row["lag_s"] > 0.5 and row["lag_bytes"] > 0 and row["replay_paused"] is True
        # No position sent, yet the new task is found: the primary serves the read.
        assert http.get(f"/api/tasks/{task_id}").status_code == 200
    finally:
        in_sync(primary, standby)


def test_an_unreachable_replica_is_skipped(
    pair: tuple[Server, Server], make_app: AppFactory
) -> None:
    primary, _standby = pair
    app = make_app(
        DATABASE_URL=primary.url_text(),
        SWARM_REPLICA_URLS="postgresql+psycopg://postgres@127.0.0.1:9/swarm",
        SWARM_REPLICA_CHECK_S=0.1,
    )
    http = app.test_client()
    (row,) = http.get("/api/ready").get_json()["replicas"]
    assert row["state"] == "unreachable" and row["error"]
    assert http.get("/api/tasks").status_code == 200


def test_the_operations_page_shows_each_replica_and_its_lag(
    pair: tuple[Server, Server], replica_app: Flask
) -> None:
    _primary, standby = pair
    html = replica_app.test_client().get("/ui/ops").get_data(as_text=True)
    assert "Read replicas" in html
    assert f"127.0.0.1:{standby.port}/swarm" in html
    assert "s-ok" in html
    assert re.search(r'<td class="num">\d+\.\d s</td>', html), "no lag shown"


def test_without_replicas_the_pages_say_nothing_of_them(
    pair: tuple[Server, Server], make_app: AppFactory
) -> None:
    primary, _standby = pair
    app = make_app(DATABASE_URL=primary.url_text())
    assert "Read replicas" not in app.test_client().get("/ui/ops").get_data(as_text=True)
    assert app.test_client().get("/api/ready").get_json()["replicas"] == []


def test_a_live_tail_on_a_replica_that_falls_behind_ends_for_a_reconnect(
    pair: tuple[Server, Server], make_app: AppFactory
) -> None:
    primary, standby = pair
    in_sync(primary, standby)
    app = make_app(
        DATABASE_URL=primary.url_text(),
        SWARM_REPLICA_URLS=standby.url_text(),
        SWARM_REPLICA_CHECK_S=0.1,
        SWARM_REPLICA_MAX_LAG_S=0.5,
        SWARM_STREAM_POLL_S=0.05,
        SWARM_STREAM_MAX_S=60,
    )
    replicas = database(app).replicas
    assert replicas is not None
    replicas.check()
    http = app.test_client()
    task_id = http.post("/api/tasks", json={"type": "analysis", "title": "tail"}).get_json()["id"]
    wait_until(lambda: http.get(f"/api/tasks/{task_id}").status_code == 200, 10, "replay")
    ended = threading.Event()

    def follow() -> None:
        response = http.get("/api/logs/stream", buffered=False)
        for _chunk in response.response:
            pass
        ended.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert not ended.is_set()  # streaming from the standby
    standby.sql("SELECT pg_wal_replay_pause()")
    try:
        http.post(f"/api/tasks/{task_id}/logs", json=[{"agent_type": "a", "message": "m"}])
        assert ended.wait(10), "the stream stayed on a replica further behind than allowed"
    finally:
        in_sync(primary, standby)


def test_reports_and_exports_read_on_the_standby(
    pair: tuple[Server, Server], replica_app: Flask
) -> None:
    primary, standby = pair
    with _client(replica_app) as client:
        task = client.create_task({"type": "analysis", "title": "reported"})
        client.add_logs(task.id, [{"agent_type": "w", "message": "exported line"}])
        marks = len(primary.log()), len(standby.log())
        report = client.report_tasks(since=datetime.now(UTC) - timedelta(hours=1))
        assert sum(sum(series.created) for series in report.series) >= 1
        exported = replica_app.test_client().get(
            f"/api/export/logs?task_id={task.id}&format=jsonl",
            headers=client.positions.headers(),
        )
        assert exported.status_code == 200
        assert "exported line" in exported.get_data(as_text=True)
    on_primary = _statements(primary, PRIMARY_APP, marks[0])
    on_standby = _statements(standby, READS_APP, marks[1])
    assert any("COPY" in line and "agent_logs" in line for line in on_standby), on_standby
    assert not any("COPY" in line for line in on_primary), on_primary
    assert any("FROM history" in line or "FROM tasks" in line for line in on_standby), on_standby
