"""The live tail's follower: rows in insert order, and on PostgreSQL never past an id whose
transaction has not committed yet."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from swarm_director.db import Database
from swarm_director.store import logs, tasks
from swarm_director.store.log_stream import LogFollower


def _task(db: Database) -> int:
    with db.transaction() as session:
        return tasks.create_task(session, {"type": "analysis", "title": "follow"}).id


def _add(db: Database, task_id: int, *messages: str) -> None:
    with db.transaction() as session:
        logs.add_logs(session, task_id, [{"agent_type": "a", "message": m} for m in messages])


def _poll(db: Database, follower: LogFollower) -> list[str]:
    with db.statement_reads() as connection:
        return [row.message for row in follower.poll(connection)]


def test_follower_returns_new_matching_rows_once(db: Database) -> None:
    task_id, other = _task(db), _task(db)
    _add(db, task_id, "old")
    follower = LogFollower(log_filter={"task_id": task_id})
    assert _poll(db, follower) == []  # starts at the newest row
    _add(db, task_id, "a", "b")
    _add(db, other, "elsewhere")
    _add(db, task_id, "c")
    assert _poll(db, follower) == ["a", "b", "c"]
    assert _poll(db, follower) == []
    resumed = LogFollower(after_id=follower.cursor, log_filter={"task_id": task_id})
    _add(db, task_id, "d")
    assert _poll(db, resumed) == ["d"]
    assert follower.queries >= 4  # each poll costs one or two statements


# SQLite writers are serialized: ids become visible in order
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_an_uncommitted_lower_id_holds_the_stream_back(db: Database, dialect: str) -> None:
    task_id = _task(db)
    now = [0.0]
    follower = LogFollower(log_filter={"task_id": task_id}, clock=lambda: now[0])
    _poll(db, follower)
    with db.engine.connect() as slow:
        slow_tx = slow.begin()
        slow.execute(  # takes the next id and does not commit yet
            text(
                "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, log_level,"
                " created_at) VALUES (:t, 'a', 'slow', now(), 'info', now())"
            ),
            {"t": task_id},
        )
        _add(db, task_id, "fast")  # a higher id, committed first
        assert _poll(db, follower) == []  # "fast" waits for the lower id
        slow_tx.commit()
    assert _poll(db, follower) == ["slow", "fast"]  # both, in id order, none skipped


# SQLite reuses rolled-back ids: no gap
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_gap_that_never_fills_is_skipped_after_the_grace_period(
    db: Database, dialect: str
) -> None:
    task_id = _task(db)
    now = [0.0]
    follower = LogFollower(log_filter={"task_id": task_id}, clock=lambda: now[0], grace_s=5)
    _poll(db, follower)
    with db.engine.connect() as rolled_back, rolled_back.begin() as tx:
        rolled_back.execute(
            text(
                "INSERT INTO agent_logs (task_id, agent_type, message, timestamp,"
                " log_level, created_at) VALUES (:t, 'a', 'never', now(), 'info', now())"
            ),
            {"t": task_id},
        )
        tx.rollback()
    _add(db, task_id, "after the gap")
    assert _poll(db, follower) == []
    now[0] = 4.9
    assert _poll(db, follower) == []
    now[0] = 5.1
    assert _poll(db, follower) == ["after the gap"]
