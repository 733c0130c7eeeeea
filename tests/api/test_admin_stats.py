"""``/api/admin/stats`` answers from the engine's statistics: no table is scanned per call."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.ops.stats import collect_stats
from swarm_director.web.context import database
from tests.api.helpers import make_agent, make_task
from tests.ops.factory import insert_logs

#: An unbounded count of agent_logs: what a stats call on a million logs must never run.
COUNT_OF_LOGS = re.compile(r"count\(\*\)[^()]*FROM agent_logs\b", re.IGNORECASE)


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement ``engine`` sends while the block runs."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _analyze(app: Flask) -> None:
    engine = database(app).engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")


def test_admin_stats_rows_are_labelled_estimates_and_nothing_is_counted(
    app: Flask, client: FlaskClient
) -> None:
    make_agent(client, "a1")
    task = make_task(client)
    make_task(client)
    insert_logs(database(app).engine, task["id"], 40)
    _analyze(app)  # what db optimize (or autovacuum) leaves behind
    with statements(database(app).engine) as seen:
        response = client.get("/api/admin/stats")
    assert response.status_code == 200
    stats = response.get_json()
    tables = {table["name"]: table for table in stats["tables"]}
    assert tables["agents"]["rows"] == 1 and tables["tasks"]["rows"] == 2
    assert tables["agent_logs"]["rows"] == 40
    assert all(table["rows_estimated"] for table in tables.values())
    assert stats["size_bytes"] > 0
    assert set(stats["last_maintenance"]) >= {"backup", "optimize", "cleanup"}
    assert not [s for s in seen if COUNT_OF_LOGS.search(s)], seen
    assert not [s for s in seen if "dbstat" in s]
    if database(app).dialect == "sqlite":
        assert tables["agent_logs"]["bytes"] is None  # measuring would read every page
    else:
        assert tables["agent_logs"]["bytes"] > 0  # file sizes: free on PostgreSQL


def test_exact_stats_do_count_so_the_check_above_can_fail(app: Flask) -> None:
    engine = database(app).engine
    with statements(engine) as seen:
        stats = collect_stats(engine, exact=True)
    assert [s for s in seen if COUNT_OF_LOGS.search(s)]
    assert not any(table["rows_estimated"] for table in stats.tables)
