"""``db stats`` and ``db status``: estimates by default, labelled; ``--exact`` counts."""

from __future__ import annotations

import json

from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.ops.optimize import optimize
from tests.api.conftest import url_text
from tests.ops.factory import add_task, insert_logs


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _logs_line(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.strip().startswith("agent_logs")]
    return line


def test_stats_and_status_label_estimates_and_count_with_exact(db: Database) -> None:
    url = url_text(db.engine.url)
    insert_logs(db.engine, add_task(db), 120)
    optimize(db.engine)  # ANALYZE: the statistics the estimates come from
    insert_logs(db.engine, add_task(db), 30)  # not analyzed yet

    text = _run("db", "stats", "--database-url", url)
    assert "Tables (rows are estimates; --exact counts):" in text
    assert "rows (estimate)" in _logs_line(text) and "~" in _logs_line(text)
    exact = _run("db", "stats", "--database-url", url, "--exact")
    assert "150 rows" in _logs_line(exact) and "estimate" not in exact.split("Last")[0]
    as_json = json.loads(_run("db", "stats", "--database-url", url, "--exact", "--json"))
    [logs] = [t for t in as_json["tables"] if t["name"] == "agent_logs"]
    assert logs["rows"] == 150 and logs["rows_estimated"] is False and logs["bytes"] > 0

    status = _run("db", "status", "--database-url", url)
    assert "Rows (estimates; --exact counts):" in status
    assert "(estimate)" in _logs_line(status)
    counted = json.loads(_run("db", "status", "--database-url", url, "--exact", "--json"))
    assert counted["rows"]["agent_logs"] == 150 and counted["rows_estimated"] is False
    estimated = json.loads(_run("db", "status", "--database-url", url, "--json"))
    assert estimated["rows_estimated"] is True
    if db.dialect == "sqlite":
        # From sqlite_stat1, as of the last ANALYZE: no count ran.
        assert estimated["rows"]["agent_logs"] == 120
    else:
        assert estimated["rows"]["agent_logs"] >= 120


def test_stats_on_postgresql_say_why_pg_stat_statements_is_not_listed(db: Database) -> None:
    url = url_text(db.engine.url)
    text = _run("db", "stats", "--database-url", url)
    if db.dialect == "sqlite":
        assert "pg_stat_statements" not in text
        return
    assert "Server statement statistics: pg_stat_statements is not installed" in text
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    try:
        text = _run("db", "stats", "--database-url", url)
        # Installed in the database, but the server does not preload the library here.
        assert "installed but not loaded (shared_preload_libraries)" in text or (
            "from pg_stat_statements" in text
        )
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP EXTENSION pg_stat_statements")
