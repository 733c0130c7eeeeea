"""The schema commands, driven through Click's runner as a user would type them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.ops.schema_export import render_markdown, render_sql
from tests.dbtools import fresh_database

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.output


@pytest.fixture
def url(dialect: str, tmp_path: Path):
    with fresh_database(dialect, tmp_path) as fresh:
        yield fresh.render_as_string(hide_password=False)


def _count_agents(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text("SELECT count(*) FROM agents")) or 0)
    finally:
        engine.dispose()


def _add_agent(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO agents (name, agent_type, status, capabilities, config, "
                    "total_conversations, total_messages_sent, created_at, updated_at) VALUES "
                    "('director', 'supervisor', 'idle', '[]', '{}', 0, 0, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        engine.dispose()


def test_init_is_idempotent_and_status_reports_head(url: str) -> None:
    code, out = run("db", "init", "--database-url", url)
    assert code == 0, out
    assert migrate.head_revision() in out
    code, out = run("db", "init", "--database-url", url)
    assert code == 0 and "already at head" in out
    _add_agent(url)
    code, out = run("db", "status", "--database-url", url, "--json")
    assert code == 0, out
    status = json.loads(out)
    assert status["revision"] == status["head"] == migrate.head_revision()
    assert status["pending"] == []
    assert status["rows"]["agents"] == 1
    assert status["size_bytes"] > 0
    code, out = run("db", "status", "--database-url", url)
    assert "Pending:   none" in out and "agents" in out


def test_status_lists_pending_migrations(url: str) -> None:
    assert run("db", "init", "--database-url", url)[0] == 0
    code, out = run("db", "downgrade", "002_add_agent_hierarchy", "--database-url", url, "--yes")
    assert code == 0, out
    code, out = run("db", "status", "--database-url", url, "--json")
    status = json.loads(out)
    assert status["pending"] == [
        "003_add_conversation_tracking",
        "004_add_maintenance_events",
        "005_add_idempotency_keys",
        "006_add_statement_timings",
        "007_add_full_text_search",
        "008_partition_agent_logs",
        "009_add_api_keys",
        "010_add_console_sessions",
        "011_add_history_and_work_queue",
        "012_add_report_rollups",
        "013_add_task_attempts",
        "014_add_error_groups",
        "015_add_attempt_counts",
        "016_add_history_error_message",
        "017_index_report_ranges",
        "018_add_attempt_digests",
        "019_add_attempt_digest_errors",
    ]
    assert "conversations" not in status["rows"]
    code, out = run("db", "current", "--database-url", url)
    assert "002_add_agent_hierarchy" in out and "head is" in out
    code, out = run("db", "upgrade", "--database-url", url)
    assert code == 0 and f"to {migrate.head_revision()}" in out


def test_validate_schema_passes_at_head_and_names_drift(url: str) -> None:
    assert run("db", "init", "--database-url", url)[0] == 0
    code, out = run("db", "validate-schema", "--database-url", url)
    assert code == 0, out
    assert "matches" in out
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_agent_logs_session_id_timestamp"))
    engine.dispose()
    code, out = run("db", "validate-schema", "--database-url", url, "--json")
    assert code == 1
    report = json.loads(out)
    assert not report["ok"]
    assert any("ix_agent_logs_session_id_timestamp" in d for d in report["differences"])


def test_reset_asks_first_and_keeps_data_when_declined(url: str) -> None:
    assert run("db", "init", "--database-url", url)[0] == 0
    _add_agent(url)
    code, out = run("db", "reset", "--database-url", url, input="n\n")
    assert code != 0
    assert "Drop ALL data" in out
    assert _count_agents(url) == 1
    code, out = run("db", "reset", "--database-url", url, input="y\n")
    assert code == 0, out
    assert _count_agents(url) == 0
    assert run("db", "validate-schema", "--database-url", url)[0] == 0


def test_reset_with_yes_does_not_ask(url: str) -> None:
    assert run("db", "init", "--database-url", url)[0] == 0
    _add_agent(url)
    code, out = run("db", "reset", "--yes", "--database-url", url)
    assert code == 0, out
    assert "Drop ALL" not in out
    assert _count_agents(url) == 0


def test_unreachable_database_is_one_line_with_password_masked() -> None:
    url = "postgresql://bob:s3cr3t-pw@127.0.0.1:1/nowhere"
    code, out = run("db", "init", "--database-url", url)
    assert code == 1
    assert "s3cr3t-pw" not in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    assert out.startswith("Error: ")


@pytest.mark.parametrize("bad", ["not a url", "nosuchdb://x/y", "postgresql://u:pw@/:::"])
def test_malformed_database_url_is_one_line(bad: str) -> None:
    code, out = run("db", "status", "--database-url", bad)
    assert code == 1
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    assert "pw" not in out


def test_status_of_missing_sqlite_file_says_to_init(tmp_path: Path) -> None:
    missing = URL.create("sqlite", database=str(tmp_path / "nope.db")).render_as_string()
    code, out = run("db", "status", "--database-url", missing)
    assert code == 1
    assert "db init" in out
    assert not (tmp_path / "nope.db").exists()


def test_unknown_revision_is_a_clear_error(url: str) -> None:
    assert run("db", "init", "--database-url", url)[0] == 0
    code, out = run("db", "upgrade", "999_nope", "--database-url", url)
    assert code == 1
    assert "999_nope" in out and "Traceback" not in out


def test_embedded_default_lives_in_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SWARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SWARM_ENV", "testing")
    code, out = run("db", "init")
    assert code == 0, out
    assert (tmp_path / "data" / "swarm_director_test.db").exists()


def test_production_refuses_without_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SWARM_ENV", "production")
    code, out = run("db", "status")
    assert code == 1
    assert "DATABASE_URL" in out


def test_committed_schema_docs_are_fresh() -> None:
    """Fails when the models changed without `swarm-director db export-schema`."""
    for dialect in ("sqlite", "postgresql"):
        committed = (REPO / "docs" / "schema" / f"{dialect}.sql").read_text(encoding="utf-8")
        assert committed == render_sql(dialect), f"docs/schema/{dialect}.sql is stale"
    committed_md = (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    assert committed_md == render_markdown(), "docs/schema.md is stale"


def test_export_schema_writes_documents(tmp_path: Path) -> None:
    code, out = run("db", "export-schema", "--docs-dir", str(tmp_path))
    assert code == 0, out
    md = (tmp_path / "schema.md").read_text(encoding="utf-8")
    assert "erDiagram" in md and "agents ||--o{ tasks" in md
    pg = (tmp_path / "schema" / "postgresql.sql").read_text(encoding="utf-8")
    assert "CREATE TABLE agent_logs" in pg and "JSONB" in pg
    assert "fk_tasks_conversation_id_conversations" in pg


def _events(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT operation, status FROM maintenance_events ORDER BY id")
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        engine.dispose()


def test_migrations_and_reset_are_audited(url: str) -> None:
    assert run("db", "init", "--database-url", url)[0] == 0
    assert run("db", "upgrade", "nope_rev", "--database-url", url)[0] == 1
    assert _events(url) == [("migrate", "ok"), ("migrate", "failed")]
    assert run("db", "reset", "--yes", "--database-url", url)[0] == 0
    # reset drops the trail with everything else, then records itself in the new schema
    assert _events(url) == [("reset", "ok")]


def test_sqlite_export_keeps_cycle_foreign_key_after_a_postgresql_export() -> None:
    """Regression: rendering PostgreSQL's ALTER for the cycle FK hid it from SQLite's DDL."""
    render_sql("postgresql")
    sqlite_sql = render_sql("sqlite")
    tasks_ddl = sqlite_sql.split("CREATE TABLE tasks (")[1].split(");")[0]
    assert "fk_tasks_conversation_id_conversations" in tasks_ddl
