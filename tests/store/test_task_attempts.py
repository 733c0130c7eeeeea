"""``task_attempts`` says what the history says, whatever writes or deletes the history: the
real work queue (four workers at once), history retention, steps deleted by hand, a deleted
task. ``db check`` names an attempt that drifted and ``db rebuild-rollups`` repairs it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.models import HistoryEntry, Task, TaskAttempt
from swarm_director.models.attempt import attempts_drift, rebuild_attempts
from swarm_director.store import tasks
from swarm_director.store.history import prune_history
from tests.store.queue_workers import run_workers
from tests.store.reports_swarm import START, build


def _drift(db: Database) -> list[tuple[int, Any, Any]]:
    with db.engine.connect() as conn:
        return attempts_drift(conn)


def _attempts(db: Database) -> dict[int, TaskAttempt]:
    with db.transaction() as session:
        rows = session.scalars(sa.select(TaskAttempt)).all()
        session.expunge_all()
    return {row.claim_id: row for row in rows}


def _claims(db: Database) -> set[int]:
    with db.engine.connect() as conn:
        return set(
            conn.scalars(
                sa.select(HistoryEntry.id).where(
                    HistoryEntry.entity == "task", HistoryEntry.action == "claim"
                )
            )
        )


def test_every_claim_of_the_swarm_is_an_attempt_with_its_wait_run_and_end(db: Database) -> None:
    swarm = build(db)
    kept = _attempts(db)
    assert set(kept) == _claims(db)
    by_claim = {(a.task_id, a.claimed): a for a in swarm.attempts}
    assert len(by_claim) == len(kept)
    for row in kept.values():
        expected = by_claim[(row.task_id, row.claimed_at)]
        assert row.agent_id == expected.agent_id
        assert row.attempt == expected.number
        assert row.wait_s == round((expected.claimed - expected.ready).total_seconds(), 3)
        assert row.end_action == expected.outcome
        if expected.outcome == "complete":
            assert expected.ended is not None
            assert row.run_s == round((expected.ended - expected.claimed).total_seconds(), 3)
        else:
            assert row.run_s is None
    assert _drift(db) == []


def test_deleting_steps_by_hand_moves_the_ends_and_waits_around_them(db: Database) -> None:
    build(db)
    with db.engine.connect() as conn:
        completed = conn.execute(
            sa.select(HistoryEntry.id, HistoryEntry.entity_id)
            .where(HistoryEntry.action == "complete")
            .order_by(HistoryEntry.id)
            .limit(1)
        ).one()
        claim_before = conn.scalar(
            sa.select(sa.func.max(HistoryEntry.id)).where(
                HistoryEntry.entity_id == completed.entity_id,
                HistoryEntry.action == "claim",
                HistoryEntry.id < completed.id,
            )
        )
    assert claim_before is not None
    assert _attempts(db)[claim_before].end_action == "complete"
    with db.engine.begin() as conn:
        conn.execute(sa.delete(HistoryEntry).where(HistoryEntry.id == completed.id))
    # Nothing ends that claim now: it is running, as a report read from the history says.
    running = _attempts(db)[claim_before]
    assert (running.end_action, running.run_s) == (None, None)
    with db.engine.begin() as conn:  # a creation and a claim, in one statement
        first_claim = conn.scalar(
            sa.select(sa.func.min(HistoryEntry.id)).where(HistoryEntry.action == "claim")
        )
        creations = sa.select(HistoryEntry.id).where(HistoryEntry.action == "create")
        conn.execute(
            sa.delete(HistoryEntry).where(
                sa.or_(
                    HistoryEntry.id.in_(creations.order_by(HistoryEntry.id).limit(3)),
                    HistoryEntry.id == first_claim,
                )
            )
        )
    assert first_claim is not None and first_claim not in _attempts(db)
    assert _drift(db) == []


def test_a_step_put_back_between_others_restores_the_attempts_around_it(db: Database) -> None:
    """An insert out of order (a retry between two claims, restored by hand with its id)
    recomputes both attempts: the first ends with the retry again, the second waits from it."""
    build(db)
    written = [c for c in HistoryEntry.__table__.c if c.computed is None]  # not error_message
    with db.engine.connect() as conn:
        retry = conn.execute(
            sa.select(*written)
            .where(HistoryEntry.action == "retry")
            .order_by(HistoryEntry.id)
            .limit(1)
        ).one()
    before = {k: _row(v) for k, v in _attempts(db).items()}
    with db.engine.begin() as conn:
        conn.execute(sa.delete(HistoryEntry).where(HistoryEntry.id == retry.id))
    moved = {k: _row(v) for k, v in _attempts(db).items()}
    assert moved != before  # the claim before the retry now ends with the next claim
    assert _drift(db) == []
    with db.engine.begin() as conn:
        conn.execute(sa.insert(HistoryEntry.__table__), [dict(retry._mapping)])
    assert {k: _row(v) for k, v in _attempts(db).items()} == before
    assert _drift(db) == []


def test_attempts_follow_deletes_pruning_and_concurrent_workers(db: Database) -> None:
    build(db)
    with db.transaction() as session:
        done = session.scalars(
            sa.select(Task.id).where(Task.status == "completed").order_by(Task.id).limit(1)
        ).one()
        tasks.delete_task(session, done)
    assert _drift(db) == []
    with db.engine.begin() as conn:
        assert prune_history(conn, START + timedelta(hours=20)) > 0
    assert _drift(db) == []
    assert set(_attempts(db)) == _claims(db)

    run_workers(db)
    assert _drift(db) == []
    ends = {row.end_action for row in _attempts(db).values()}
    assert {"complete", "retry"} <= ends


def test_db_check_names_a_drifted_attempt_and_rebuild_rollups_repairs_it(
    db: Database, db_url: URL
) -> None:
    build(db, n_tasks=8)
    url = db_url.render_as_string(hide_password=False)
    assert _cli("db", "check", "--database-url", url)[0] == 0
    claim = min(_attempts(db))
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(TaskAttempt).where(TaskAttempt.claim_id == claim).values(end_action="fail")
        )
    code, out = _cli("db", "check", "--database-url", url)
    assert code == 1
    assert f"claim {claim}: the table says" in out and "ended by fail" in out

    code, out = _cli("db", "rebuild-rollups", "--database-url", url)
    assert code == 0 and f"task_attempts {len(_claims(db))} rows" in out
    assert _drift(db) == []
    assert _cli("db", "check", "--database-url", url)[0] == 0


def test_a_rebuild_derives_the_same_rows_the_triggers_kept(db: Database) -> None:
    build(db)
    before = {k: _row(v) for k, v in _attempts(db).items()}
    with db.engine.begin() as conn:
        assert rebuild_attempts(conn) == len(before)
    assert {k: _row(v) for k, v in _attempts(db).items()} == before


def _row(attempt: TaskAttempt) -> tuple[Any, ...]:
    return (
        attempt.task_id,
        attempt.agent_id,
        attempt.attempt,
        attempt.claimed_at,
        attempt.wait_s,
        attempt.run_s,
        attempt.end_action,
    )


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output
