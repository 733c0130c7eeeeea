"""``attempt_count_hours`` stays what a count of the attempts says, whatever changes them:
the queue's own steps (four workers at once), a task's type changed by hand, a task deleted,
a history step written between others or pruned; and the failures report's failure rates
read through it equal the same figures counted from every attempt, for ranges that start and
end mid-hour, within one hour, before and after a fold."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.migrations import migrate
from swarm_director.models import HistoryEntry, Task, TaskAttempt
from swarm_director.models import attempt_count_ddl as ddl
from swarm_director.models.attempt_count import attempt_counts_drift
from swarm_director.models.rollup import compact
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import tasks
from swarm_director.store.history import prune_history
from swarm_director.store.reports.attempts import failure_rows
from swarm_director.store.reports.window import resolve
from tests.store.queue_workers import run_workers
from tests.store.reports_swarm import START, build


def _drift(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return attempt_counts_drift(conn)


def _kinds(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT kind, sum(attempts) FROM (SELECT kind, attempts FROM attempt_count_hours "
            "UNION ALL SELECT kind, attempts FROM attempt_count_deltas) AS s GROUP BY kind"
        ).all()
    return {kind: int(n) for kind, n in rows}


def _attempts(db: Database) -> dict[str, int]:
    """The attempts of existing tasks, claimed / completed / failed, counted from the table."""
    with db.engine.connect() as conn:
        claimed, completed, failed = conn.exec_driver_sql(
            "SELECT count(*), sum(CASE WHEN end_action = 'complete' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN end_action IN ('fail', 'retry', 'expire') THEN 1 ELSE 0 END) "
            "FROM task_attempts a JOIN tasks t ON t.id = a.task_id"
        ).one()
    return {"claimed": claimed, "completed": completed, "failed": failed}


def _claim_times(db: Database) -> list[datetime]:
    """When each attempt of an existing task was claimed, in order."""
    a = TaskAttempt
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(a.claimed_at).join(Task, Task.id == a.task_id).order_by(a.claimed_at)
            )
            .scalars()
            .all()
        )


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0.2, 0.8),  # from a claim mid-hour to just after another: both ends partial hours
        (0.0, 1.0),  # every attempt
        (0.5, 0.5),  # within one hour
    ],
)
def test_failure_rates_through_the_rollup_equal_every_attempt_counted(
    db: Database, first: float, last: float
) -> None:
    build(db)
    assert _drift(db) == []
    claims = _claim_times(db)
    since = claims[int(first * (len(claims) - 1))]
    until = claims[int(last * (len(claims) - 1))] + timedelta(microseconds=1)
    window = resolve(ReportQuery(since=since, until=until))
    for folded in (False, True):
        if folded:
            with db.engine.begin() as conn:
                compact(conn)
        with db.engine.connect() as conn:
            fast = failure_rows(conn, window)
            raw = failure_rows(conn, window, rollup=False)
        assert fast == raw
    counted = [c for c in claims if since <= c < until]
    assert sum(row.attempts for row in fast["type"]) == len(counted)
    if first != last:
        # The partial hours at both ends hold attempts: the rollup alone would miss them.
        assert since.minute + since.second and until.minute + until.second
        assert sum(row.failed for row in fast["type"]) > 0
        assert sum(row.completed for row in fast["agent"]) > 5


def test_attempt_counts_follow_edits_deletes_pruning_and_concurrent_workers(
    db: Database,
) -> None:
    build(db)
    assert _drift(db) == []
    assert _kinds(db) == _attempts(db)
    with db.transaction() as session:
        retried = session.scalars(
            sa.select(Task.id).where(Task.attempts > 1).order_by(Task.id).limit(2)
        ).all()
        tasks.delete_task(session, retried[1])  # its attempts leave the counts
    with db.engine.begin() as conn:  # the store never changes a type; SQL by hand may
        conn.execute(
            sa.text("UPDATE tasks SET type = 'communication' WHERE id = :i"), {"i": retried[0]}
        )
    assert _drift(db) == []
    with db.engine.begin() as conn:
        # A step deleted by hand: the claim before it now ends as the step after it says.
        step = conn.execute(
            sa.select(sa.func.min(HistoryEntry.id)).where(
                HistoryEntry.entity == "task",
                HistoryEntry.entity_id == retried[0],
                HistoryEntry.action.in_(["fail", "retry", "expire"]),
            )
        ).scalar_one()
        conn.execute(sa.delete(HistoryEntry).where(HistoryEntry.id == step))
    assert _drift(db) == []
    with db.engine.begin() as conn:
        assert prune_history(conn, START + timedelta(hours=20)) > 0
    assert _drift(db) == []

    run_workers(db)
    assert _drift(db) == []
    kinds = _kinds(db)
    assert kinds == _attempts(db)
    assert kinds["claimed"] > kinds["completed"] > 0 and kinds["failed"] > 0


def test_db_check_names_a_drifted_hour_and_rebuild_rollups_repairs_it(
    db: Database, db_url: URL
) -> None:
    build(db)
    url = db_url.render_as_string(hide_password=False)
    assert CliRunner().invoke(cli, ["db", "check", "--database-url", url]).exit_code == 0
    with db.engine.begin() as conn:
        compact(conn)
        hour = conn.exec_driver_sql(
            "SELECT epoch_hour, type, agent_id FROM attempt_count_hours "
            "WHERE kind = 'failed' ORDER BY epoch_hour LIMIT 1"
        ).one()
        conn.execute(
            sa.text(
                "UPDATE attempt_count_hours SET attempts = attempts + 2 WHERE kind = 'failed' "
                "AND epoch_hour = :h AND type = :t AND agent_id = :a"
            ),
            {"h": hour.epoch_hour, "t": hour.type, "a": hour.agent_id},
        )
    result = CliRunner().invoke(cli, ["db", "check", "--database-url", url])
    assert result.exit_code == 1
    assert f"failed {hour.type}/agent {hour.agent_id}: the rollup says" in result.output
    assert "[rollup_drift]" in result.output or "rollup_drift" in result.output

    result = CliRunner().invoke(cli, ["db", "rebuild-rollups", "--database-url", url])
    assert result.exit_code == 0 and "attempt_count_hours" in result.output
    assert _drift(db) == []
    assert CliRunner().invoke(cli, ["db", "check", "--database-url", url]).exit_code == 0


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_migration_carries_the_same_sql_as_the_models(dialect: str) -> None:
    """Schemas built from the models (``create_all``) get the triggers of
    ``attempt_count_ddl``; migrated ones the revision's copy: the two are the same text."""
    path = migrate.MIGRATIONS_DIR / "versions" / "015_add_attempt_counts.py"
    spec = importlib.util.spec_from_file_location("revision_015", path)
    assert spec is not None and spec.loader is not None
    revision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision)
    assert revision._TRIGGERS[dialect] == ddl.create(dialect)
    assert revision._BACKFILL[dialect] == [ddl.backfill_sql(dialect)]
    assert revision._DROP[dialect] == ddl.drop(dialect)
