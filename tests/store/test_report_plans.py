"""The reports read their ranges through indexes on SQLite before any ``ANALYZE``.

SQLite picks indexes from ``sqlite_stat1``, which only ``ANALYZE`` writes (``db optimize``,
``db maintain``). Without it the planner took ``entity = 'task'`` for selective and read
every task step of the history through ``(entity, entity_id, id)``, and read every email and
every draft ever written for a month's report. Every statement the reports run is checked
here with ``EXPLAIN QUERY PLAN`` on a migrated database that has never been analyzed: no data
table is read whole, and the history is never read by entity alone. (PostgreSQL plans from
its own estimates without statistics; the plan choice without ``ANALYZE`` is SQLite's.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.db.engine import make_engine
from swarm_director.migrations import migrate
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import reports
from tests.store.reports_swarm import START, build

#: The tables the reports read for their figures (the rollups' are small and read whole).
DATA_TABLES = ("agent_logs", "tasks", "history", "task_attempts", "email_messages", "drafts")

REPORTS: dict[str, Callable[[sa.Connection, ReportQuery], Any]] = {
    "tasks": reports.task_counts,
    "tasks without the rollup": lambda c, q: reports.task_counts(c, q, rollup=False),
    "durations": reports.durations,
    "failures": reports.failures,
    "failures without the rollup": lambda c, q: reports.failures(c, q, rollup=False),
    "logs": reports.log_volume,
    "emails": reports.email_outcomes,
    "drafts": reports.draft_approvals,
}


@pytest.fixture
def unanalyzed(tmp_path: Path) -> Iterator[Database]:
    database = Database(make_engine(f"sqlite:///{tmp_path / 'plans.db'}"))
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def _statements(
    database: Database, report: Callable[[sa.Connection, ReportQuery], Any]
) -> list[str]:
    """Every statement ``report`` runs, as SQLite received it (values in place)."""
    # A range that starts and ends mid-hour: the partial hours are read from the data.
    since = START + timedelta(hours=2, minutes=17)
    query = ReportQuery(since=since, until=since + timedelta(days=3), bucket="day")
    seen: list[str] = []
    with database.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        driver.set_trace_callback(seen.append)
        try:
            report(conn, query)
        finally:
            driver.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


@pytest.mark.parametrize("name", list(REPORTS))
def test_no_report_reads_a_whole_table_without_statistics(unanalyzed: Database, name: str) -> None:
    build(unanalyzed, n_tasks=20)
    with unanalyzed.engine.connect() as conn:
        assert (
            conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).scalar_one()
            == 0
        ), "the database was analyzed: the test would prove nothing"
    statements = _statements(unanalyzed, REPORTS[name])
    assert statements
    raw = sqlite3.connect(str(unanalyzed.engine.url.database))
    try:
        for statement in statements:
            plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}")]
            for step in plan:
                assert not any(step == f"SCAN {table}" for table in DATA_TABLES), (statement, plan)
                assert "ix_history_entity_entity_id_id (entity=?)" not in step, (statement, plan)
    finally:
        raw.close()
