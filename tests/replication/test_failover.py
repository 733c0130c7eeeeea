"""Failover: a multi-host primary URL with ``target_session_attrs=read-write`` finds the promoted
standby by itself, and with synchronous replication no acknowledged write is lost.

The primary is stopped the hard way (``pg_ctl -m immediate``, as a crash) while a client loop
ingests log batches and creates tasks, then the standby is promoted. Requests caught in the
switch answer 503 with ``Retry-After``; the client retries batch ingest (it carries an
``Idempotency-Key``) by itself, and a task creation it is not acknowledged for is simply not
counted as written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from click.testing import CliRunner
from flask import Flask

from swarm_director.cli.main import cli
from swarm_director.client import Client
from swarm_director.client.errors import ClientError
from swarm_director.client.retry import RetryPolicy
from tests.replication.cluster import Server, make_standby, wait_until
from tests.replication.conftest import AppFactory, migrated_primary, require_servers

pytestmark = pytest.mark.replication

#: The client's patience across the switch: up to ~20 s of retries per call.
PATIENT = RetryPolicy(attempts=30, backoff=0.1, max_backoff=1.0)


@pytest.fixture(scope="module")
def sync_pair() -> Iterator[tuple[Server, Server]]:
    """A primary whose commits wait for the standby (synchronous replication)."""
    require_servers()
    primary = migrated_primary()
    try:
        standby = make_standby(primary, "standby")
        try:
            # Only now: until a standby confirms, every commit would wait.
            primary.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby'")
            primary.sql("SELECT pg_reload_conf()")
            wait_until(
                lambda: (
                    primary.sql("SELECT sync_state FROM pg_stat_replication", database="postgres")
                    == [("sync",)]
                ),
                30,
                "synchronous replication",
            )
            yield primary, standby
        finally:
            standby.remove()
    finally:
        primary.remove()


def multi_host_url(*servers: Server) -> str:
    hosts = "&".join(f"host=127.0.0.1:{server.port}" for server in servers)
    return f"postgresql+psycopg://postgres@/swarm?{hosts}&target_session_attrs=read-write"


@dataclass
class Loop:
    """What the client loop was acknowledged for, and when."""

    logs: list[str] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _run(app: Flask, task_id: int, loop: Loop) -> None:
    transport = httpx.WSGITransport(app=app)
    with Client("http://app", transport=transport, retry=PATIENT) as client:
        n = 0
        while not loop.stop.is_set():
            n += 1
            batch = [{"agent_type": "loop", "message": f"m{n}-{i}"} for i in range(20)]
            try:
                client.add_logs(task_id, batch)
                loop.logs += [record["message"] for record in batch]
                loop.successes.append(time.monotonic())
            except ClientError as error:
                loop.failures.append((time.monotonic(), type(error).__name__))
            try:
                task = client.create_task({"type": "analysis", "title": f"t{n}"})
                loop.tasks.append(task.id)
                loop.successes.append(time.monotonic())
            except ClientError as error:  # not acknowledged: may or may not be stored
                loop.failures.append((time.monotonic(), type(error).__name__))


def test_promotion_under_load_loses_no_acknowledged_write(
    sync_pair: tuple[Server, Server], make_app: AppFactory
) -> None:
    primary, standby = sync_pair
    app = make_app(DATABASE_URL=multi_host_url(primary, standby))
    http = app.test_client()
    task_id = http.post("/api/tasks", json={"type": "analysis", "title": "host"}).get_json()["id"]
    loop = Loop()
    worker = threading.Thread(target=_run, args=(app, task_id, loop), daemon=True)
    worker.start()
    try:
        wait_until(lambda: len(loop.successes) >= 20, 30, "the loop to write")
        primary.stop("immediate")  # a crash: no shutdown checkpoint, clients cut off
        stopped = time.monotonic()
        # Caught in the switch: no read-write server answers yet.
        during = http.post("/api/tasks", json={"type": "analysis", "title": "during"})
        assert during.status_code == 503
        assert during.headers["Retry-After"] == "1"
        assert during.get_json()["error"]["code"] == "unavailable"
        standby.promote()
        wait_until(lambda: any(t > stopped for t in loop.successes), 30, "the loop to resume")
        resumed = min(t for t in loop.successes if t > stopped)
        count = len(loop.successes)
        wait_until(lambda: len(loop.successes) >= count + 20, 30, "more writes")
    finally:
        loop.stop.set()
        worker.join(timeout=60)
    assert resumed - stopped < 15, f"resumed {resumed - stopped:.1f} s after the crash"

    # Every acknowledged write is on the new primary, each log exactly once.
    stored_logs = standby.sql(f"SELECT message FROM agent_logs WHERE task_id = {task_id}")
    stored = [str(row[0]) for row in stored_logs]
    assert len(stored) == len(set(stored)), "a retried batch was stored twice"
    assert set(loop.logs) <= set(stored)
    ids = ",".join(map(str, loop.tasks))
    found = {int(row[0]) for row in standby.sql(f"SELECT id FROM tasks WHERE id IN ({ids})")}
    assert found == set(loop.tasks)

    result = CliRunner().invoke(cli, ["db", "check", "--database-url", standby.url_text()])
    assert result.exit_code == 0, result.output


def test_a_multi_host_url_skips_a_standby_for_writes(
    pair_for_routing: tuple[Server, Server], make_app: AppFactory
) -> None:
    """The standby listed first is passed over: target_session_attrs=read-write."""
    primary, standby = pair_for_routing
    app = make_app(DATABASE_URL=multi_host_url(standby, primary))
    response = app.test_client().post("/api/tasks", json={"type": "analysis", "title": "w"})
    assert response.status_code == 201
    task_id = response.get_json()["id"]
    assert primary.sql(f"SELECT title FROM tasks WHERE id = {task_id}") == [("w",)]


@pytest.fixture(scope="module")
def pair_for_routing() -> Iterator[tuple[Server, Server]]:
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
