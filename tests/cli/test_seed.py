"""`db seed`: the demo swarm (idempotent, counters exact) and the synthetic data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database, make_engine
from swarm_director.models import Agent, AgentLog, Conversation, Draft, MaintenanceEvent, Task
from tests.dbtools import fresh_database


@pytest.fixture
def url(dialect: str, tmp_path: Path):
    with fresh_database(dialect, tmp_path) as fresh:
        text = fresh.render_as_string(hide_password=False)
        assert CliRunner().invoke(cli, ["db", "init", "--database-url", text]).exit_code == 0
        yield text


def _count(database: Database, model: type) -> int:
    with database.read() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_demo_seed_is_idempotent_and_consistent(url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "seed", "--database-url", url])
    assert first.exit_code == 0, first.output
    assert "Seeded the demo swarm" in first.output
    database = Database(make_engine(url))
    try:
        before = {m: _count(database, m) for m in (Agent, Task, AgentLog, Draft, Conversation)}
        second = runner.invoke(cli, ["db", "seed", "--database-url", url])
        assert second.exit_code == 0 and "already present" in second.output
        after = {m: _count(database, m) for m in (Agent, Task, AgentLog, Draft, Conversation)}
        assert before == after
        with database.read() as s:
            director = s.scalars(sa.select(Agent).where(Agent.name == "director")).one()
            children = s.scalars(sa.select(Agent.name).where(Agent.parent_id == director.id))
            assert set(children) == {"communications", "analysis"}
            chat = s.scalars(sa.select(Conversation)).one()
            assert chat.message_count == 2 and chat.participant_count == 2
            versions = s.scalars(sa.select(Draft.version).order_by(Draft.version)).all()
            assert versions == [1, 2]
            events = s.scalars(sa.select(MaintenanceEvent.operation)).all()
            assert events.count("seed") == 2
    finally:
        database.dispose()


def test_scale_adds_synthetic_tasks_and_logs(url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["db", "seed", "--scale", "7", "--logs-per-task", "30", "--json", "--database-url", url],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["synthetic"] == {"tasks": 7, "agent_logs": 210}
    database = Database(make_engine(url))
    try:
        with database.read() as s:
            synthetic = (
                sa.select(sa.func.count())
                .select_from(Task)
                .where(Task.title.like("Synthetic task %"))
            )
            assert s.scalar(synthetic) == 7
            assert _count(database, AgentLog) == 6 + 210
    finally:
        database.dispose()


def test_seed_refuses_a_schema_behind_head(url: str) -> None:
    runner = CliRunner()
    down = runner.invoke(
        cli, ["db", "downgrade", "003_add_conversation_tracking", "--yes", "--database-url", url]
    )
    assert down.exit_code == 0, down.output
    result = runner.invoke(cli, ["db", "seed", "--database-url", url])
    assert result.exit_code == 1
    assert "db upgrade" in result.output


@pytest.mark.parametrize("bad", [["--scale", "0"], ["--scale", "abc"], ["--logs-per-task", "-1"]])
def test_bad_seed_arguments_are_rejected(bad: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["db", "seed", *bad, "--database-url", f"sqlite:///{tmp_path}/x.db"]
    )
    assert result.exit_code == 2
    assert "Invalid value" in result.output
    assert not (tmp_path / "x.db").exists()
