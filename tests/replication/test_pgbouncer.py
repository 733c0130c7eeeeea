"""The service behind PgBouncer in transaction mode (Debian's ``pgbouncer``).

Two traps: psycopg prepares a statement on its fifth run, and the next transaction may get
another server connection where it does not exist (``SWARM_PG_TRANSACTION_POOLER`` turns the
preparing off); and ``LISTEN`` (the work queue's wake-up) loses its notifications, so there the
queue's signal polls the WAL position instead. The API contract test and the live tail run
through PgBouncer here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from swarm_director import create_app
from swarm_director.client import Client
from swarm_director.web.context import database
from tests.api.conftest import SHORT_STREAMS
from tests.api.test_contract import AUTH, CHECKS, TOKEN, _seed, schema
from tests.dbtools import IN_CI
from tests.replication.cluster import Bouncer, Server, pgbouncer_bin, start_pgbouncer
from tests.replication.conftest import migrated_primary, require_servers
from tests.serving import ServeProcess, serve_env

pytestmark = pytest.mark.replication

POOLED = {"SWARM_PG_TRANSACTION_POOLER": "1"}


@pytest.fixture(scope="module")
def bouncer() -> Iterator[tuple[Server, Bouncer]]:
    """A migrated primary of its own and PgBouncer (transaction mode) in front of it."""
    require_servers()
    if pgbouncer_bin() is None:
        reason = "pgbouncer is not installed (Debian package pgbouncer)"
        if IN_CI:
            pytest.fail(f"CI=true requires {reason}")
        pytest.skip(reason)
    primary = migrated_primary()
    try:
        pooler = start_pgbouncer(primary)
        try:
            yield primary, pooler
        finally:
            pooler.remove()
    finally:
        primary.remove()


@pytest.fixture(scope="module")
def pooled_app(
    bouncer: tuple[Server, Bouncer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    _primary, pooler = bouncer
    config = {"DATABASE_URL": pooler.url_text(), "SWARM_API_TOKEN": TOKEN, **SHORT_STREAMS}
    app = create_app({**config, **POOLED, "SWARM_DATA_DIR": str(tmp_path_factory.mktemp("d"))})
    try:
        _seed(app)
        yield app
    finally:
        database(app).dispose()


@schema.parametrize()
@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_the_contract_through_pgbouncer(
    case: Any, pooled_app: Flask
) -> None:
    case.call_and_validate(app=pooled_app, headers=AUTH, checks=CHECKS)


@pytest.fixture(scope="module")
def pooled_server(
    bouncer: tuple[Server, Bouncer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    _primary, pooler = bouncer
    env = serve_env({**POOLED, "SWARM_API_TOKEN": TOKEN}, drop_prefix="SWARM_")
    logs = tmp_path_factory.mktemp("serve")
    with ServeProcess(pooler.url_text(), Path(logs), env=env) as server:
        yield server


def test_the_live_tail_through_pgbouncer(
    pooled_server: ServeProcess, bouncer: tuple[Server, Bouncer]
) -> None:
    with Client(pooled_server.url, TOKEN) as client:
        task = client.create_task({"type": "analysis", "title": "tailed"})
        # From the newest log stored so far on. The contract test before this one deletes
        # the logs it made: the ids between the newest row and ours hold a stream back for
        # log_stream.GAP_GRACE_S (5 s) before it takes them as never coming.
        (newest,) = bouncer[0].sql("SELECT coalesce(max(id), 0) FROM agent_logs")[0]
        start = str(newest)
        seen: list[str] = []
        searched: list[str] = []

        errors: list[BaseException] = []

        def follow(into: list[str], **filters: Any) -> None:
            try:
                _follow(into, **filters)
            except BaseException as error:
                errors.append(error)

        def _follow(into: list[str], **filters: Any) -> None:
            with Client(pooled_server.url, TOKEN) as reader:
                # From before the task's first log on, however late the stream opens.
                stream = reader.follow_logs(task.id, cursor=start, idle_timeout=15.0, **filters)
                for record in stream:
                    into.append(record.message)
                    if len(into) == 30 or (filters and len(into) == 10):
                        return

        threads = [
            threading.Thread(target=follow, args=(seen,)),
            threading.Thread(target=follow, args=(searched,), kwargs={"q": "needle"}),
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # usually both streams are open: most records arrive live
        for n in range(10):
            batch = [{"agent_type": "w", "message": f"needle {n}"}]
            batch += [{"agent_type": "w", "message": f"hay {n} {i}"} for i in range(2)]
            client.add_logs(task.id, batch)
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert seen == [m for n in range(10) for m in (f"needle {n}", f"hay {n} 0", f"hay {n} 1")]
    assert searched == [f"needle {n}" for n in range(10)]


def test_a_waiting_claim_wakes_promptly_through_pgbouncer(pooled_server: ServeProcess) -> None:
    with Client(pooled_server.url, TOKEN) as client:
        agent = client.create_agent({"name": "pooled-worker", "agent_type": "worker"})
        while client.claim_tasks(agent.id, limit=100).claims:
            pass
        woke: dict[str, float] = {}

        def claim() -> None:
            with Client(pooled_server.url, TOKEN, timeout=30) as worker:
                claims = worker.claim_tasks(agent.id, wait_s=10).claims
                woke["at"] = time.monotonic()
                woke["count"] = len(claims)

        thread = threading.Thread(target=claim)
        thread.start()
        time.sleep(1.5)
        created = time.monotonic()
        client.create_task({"type": "analysis", "title": "wake up"})
        thread.join(timeout=30)
    assert woke["count"] == 1
    # The once-a-second fallback alone would take up to a second.
    assert woke["at"] - created < 0.6
