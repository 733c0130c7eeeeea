"""Prepared statements on the driver's cursor (the work queue's hot path) and the write
transaction they run in: the same values, errors, events and atomicity as SQLAlchemy's own
execution, and the queue's guarantees on that path."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from swarm_director.db import Database, utcnow
from swarm_director.db.actor import acting_as
from swarm_director.enums import TaskPriority, TaskStatus
from swarm_director.models import HistoryEntry, Task
from swarm_director.store import history, queue, tasks
from swarm_director.store.prepared import Prepared
from swarm_director.store.queue.statements import HISTORY, HOLDER, TASK_COLUMNS, TASKS
from tests.store.conftest import new_agent, new_task


def _setup(db: Database, count: int, **fields: Any) -> tuple[int, list[int]]:
    with db.transaction() as session:
        agent = new_agent(session).id
        ids = [new_task(session, **fields).id for _ in range(count)]
    return agent, ids


def _history(db: Database, task_id: int) -> list[Any]:
    with db.statement_reads() as conn:
        return list(history.list_history(conn, {"entity": "task", "entity_id": task_id}).items)


def test_a_prepared_row_reads_like_sqlalchemys(db: Database) -> None:
    agent, (task_id,) = _setup(db, 1, priority="high")
    with db.writes() as conn:
        (claim,) = queue.claim_tasks(conn, agent)
        done = queue.complete_task(conn, task_id, claim.lease_token, result={"rows": [1, 2]})
    with db.writes() as conn:
        prepared = HOLDER.first(conn, {"task_id": task_id})
        core = conn.execute(sa.select(*TASK_COLUMNS).where(TASKS.c.id == task_id)).one()
    assert prepared is not None
    for name in core._fields:
        assert getattr(prepared, name) == getattr(core, name), name
        assert getattr(done, name) == getattr(core, name), name
    assert prepared.status is TaskStatus.COMPLETED and prepared.priority is TaskPriority.HIGH
    assert prepared.result == {"rows": [1, 2]}
    assert prepared.completed_at.tzinfo is not None and prepared.completed_at <= utcnow()
    assert prepared._asdict()["id"] == task_id


def test_the_claim_and_the_completion_write_their_history_rows_with_the_actor(
    db: Database,
) -> None:
    agent, (task_id,) = _setup(db, 1)
    with acting_as("worker-7", request_id="req-1"), db.writes() as conn:
        (claim,) = queue.claim_tasks(conn, agent, lease_s=30)
    with acting_as("worker-7", request_id="req-2"), db.writes() as conn:
        queue.complete_task(conn, task_id, claim.lease_token, result={"ok": True})
    created, claimed, completed = _history(db, task_id)
    assert created.action == "create"
    assert (claimed.action, claimed.actor, claimed.request_id) == ("claim", "worker-7", "req-1")
    assert claimed.changes == {
        "status": ["pending", "in_progress"],
        "assigned_agent_id": [None, agent],
        "attempt": [0, 1],
        "lease_expires_at": [None, claim.lease_expires_at.isoformat()],
    }
    assert (completed.action, completed.actor, completed.request_id) == (
        "complete",
        "worker-7",
        "req-2",
    )
    assert completed.changes == {
        "status": ["in_progress", "completed"],
        "attempt": [1, 1],
        "result": [None, {"ok": True}],
    }


def test_an_error_in_a_write_transaction_keeps_nothing_of_it(db: Database) -> None:
    agent, (task_id,) = _setup(db, 1)
    with pytest.raises(RuntimeError), db.writes() as conn:
        queue.claim_tasks(conn, agent)  # prepared statements
        conn.execute(sa.update(Task).where(Task.id == task_id).values(title="changed"))  # Core
        raise RuntimeError("the caller gave up")
    with db.statement_reads() as conn:
        task = tasks.read_task(conn, task_id)
    assert (task.status, task.attempts, task.assigned_agent_id) == ("pending", 0, None)
    assert task.title != "changed"
    assert [row.action for row in _history(db, task_id)] == ["create"]


def test_a_driver_error_is_sqlalchemys_error_and_rolls_the_transaction_back(
    db: Database,
) -> None:
    agent, (task_id,) = _setup(db, 1)
    row = history.entry_values("task", task_id, "note", {"x": (1, 2)})
    with pytest.raises(sa.exc.IntegrityError), db.writes() as conn:
        queue.claim_tasks(conn, agent)
        HISTORY.run(conn, {**row, "entity": None})  # NOT NULL
    assert [row.action for row in _history(db, task_id)] == ["create"]
    with db.writes() as conn:  # the connection went back to the pool in a usable state
        assert [c.task.id for c in queue.claim_tasks(conn, agent)] == [task_id]


def test_cursor_events_see_the_prepared_statements(db: Database) -> None:
    agent, _ = _setup(db, 1)
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0] + " " + statement.split()[1])

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        with db.writes() as conn:
            queue.claim_tasks(conn, agent)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    assert "UPDATE agents" in seen
    assert "INSERT INTO" in seen
    assert sum(s.startswith("SELECT") for s in seen) >= 2  # the expiry sweep, a ready select


def test_a_statement_that_needs_a_python_default_is_refused(db: Database) -> None:
    stmt = Prepared(sa.update(Task).where(Task.id == sa.bindparam("task_id")).values(title="x"))
    with db.writes() as conn, pytest.raises(TypeError, match="updated_at"):
        stmt.run(conn, {"task_id": 1})


def test_threads_claiming_and_completing_never_share_a_task(db: Database) -> None:
    count = 60
    agent, ids = _setup(db, count)
    done: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            while True:
                with db.writes() as conn:
                    claims = queue.claim_tasks(conn, agent, limit=2)
                if not claims:
                    return
                for claim in claims:
                    with db.writes() as conn:
                        queue.complete_task(conn, claim.task.id, claim.lease_token)
                    with lock:
                        done.append(claim.task.id)
        except BaseException as error:  # a thread's failure must fail the test
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(done) == sorted(ids)
    with db.statement_reads() as conn:
        actions = conn.execute(
            sa.select(HistoryEntry.action, sa.func.count())
            .where(HistoryEntry.action.in_(["claim", "complete"]))
            .group_by(HistoryEntry.action)
        ).all()
    assert dict(actions) == {"claim": count, "complete": count}


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # SQLite's one writer connection
def test_sqlite_writes_reuse_one_connection_and_a_forked_child_gets_its_own(
    db: Database, tmp_path: Any
) -> None:
    agent, ids = _setup(db, 2)
    with db.writes() as first:
        queue.claim_tasks(first, agent)
    with db.writes() as second:
        assert second is first  # no pool checkout a transaction
    # A child forked after the parent wrote must not use the parent's SQLite handle.
    ctx = multiprocessing.get_context("fork")
    done = ctx.Queue()

    def child() -> None:
        with db.writes() as conn:
            done.put((conn is first, [c.task.id for c in queue.claim_tasks(conn, agent)]))

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert done.get(timeout=5) == (False, [ids[1]])
    with db.writes() as again:  # the parent's connection still works
        assert again is first
        assert queue.claim_tasks(again, agent) == []


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_a_nested_sqlite_write_transaction_fails_at_once(db: Database) -> None:
    """It used to wait out the busy timeout (30 s) for the outer transaction's lock."""
    agent, _ids = _setup(db, 1)
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError), db.writes() as outer:
        queue.claim_tasks(outer, agent)
        with db.writes():
            pass
    assert time.monotonic() - started < 5
    with db.writes() as conn:  # rolled back: the task is still there to claim
        assert len(queue.claim_tasks(conn, agent)) == 1


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_an_invalidated_sqlite_writer_connection_gets_a_new_one(db: Database) -> None:
    agent, _ids = _setup(db, 1)
    with db.writes() as first:
        lost = first.connection.dbapi_connection
        first.invalidate()  # as SQLAlchemy does on a lost connection
    with db.writes() as conn:
        assert conn.connection.dbapi_connection is not lost
        assert len(queue.claim_tasks(conn, agent)) == 1
