"""The work queue: claims under a lease, heartbeats, completion at most once, retries with
backoff, expired leases taken over, and waiting for work."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from swarm_director.db import Database, utcnow
from swarm_director.db.actor import acting_as, current_actor
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import Agent, HistoryEntry, Task, TaskStatus, TaskType
from swarm_director.store import history, queue, tasks
from swarm_director.store.queue_wait import ReadySignal, wait_for
from tests.store.conftest import new_agent, new_task


def _setup(db: Database, *specs: dict[str, object]) -> tuple[int, list[int]]:
    with db.transaction() as session:
        agent = new_agent(session).id
        ids = [new_task(session, **spec).id for spec in specs]
    return agent, ids


def _claim(db: Database, agent: int, **kw: object) -> list[queue.Claim]:
    with db.transaction() as session:
        return queue.claim_tasks(session, agent, **kw)  # type: ignore[arg-type]


def _task(db: Database, task_id: int) -> sa.Row:
    with db.statement_reads() as conn:
        return tasks.read_task(conn, task_id)


def _actions(db: Database, task_id: int) -> list[tuple[str, str]]:
    with db.statement_reads() as conn:
        rows = history.list_history(conn, {"entity": "task", "entity_id": task_id}).items
    return [(r.action, r.actor) for r in rows]


def test_a_claim_takes_the_highest_priority_then_the_oldest_ready_task(db: Database) -> None:
    agent, (low, medium_old, medium_new, high) = _setup(
        db, {"priority": "low"}, {}, {}, {"priority": "high"}
    )
    with acting_as("worker-key"):
        order = [_claim(db, agent)[0].task.id for _ in range(4)]
    assert order == [high, medium_old, medium_new, low]
    assert _claim(db, agent) == []
    task = _task(db, high)
    assert (task.status, task.assigned_agent_id, task.attempts) == ("in_progress", agent, 1)
    assert task.lease_expires_at > utcnow() and task.claimed_at is not None
    assert _actions(db, high) == [("create", current_actor().name), ("claim", "worker-key")]
    with db.statement_reads() as conn:
        seen = conn.scalar(sa.select(Agent.last_seen_at).where(Agent.id == agent))
    assert seen is not None


def test_an_empty_claim_on_a_core_transaction_is_the_agents_sign_of_life(db: Database) -> None:
    agent, _ = _setup(db)
    with db.writes() as conn:
        assert queue.claim_tasks(conn, agent) == []
    with db.statement_reads() as conn:
        seen = conn.scalar(sa.select(Agent.last_seen_at).where(Agent.id == agent))
    assert seen is not None and utcnow() - seen < timedelta(minutes=1)
    with pytest.raises(NotFoundError), db.writes() as conn:
        queue.claim_tasks(conn, agent + 1000)


def test_a_claim_skips_tasks_not_yet_due_of_other_types_or_for_another_agent(
    db: Database,
) -> None:
    agent, (later, review, other) = _setup(
        db,
        {"not_before": utcnow() + timedelta(hours=1)},
        {"type": "document_review"},
        {},
    )
    with db.transaction() as session:
        someone = new_agent(session).id
        tasks.update_task(session, other, {"assigned_agent_id": someone})
    assert [c.task.id for c in _claim(db, agent, types=["analysis"], limit=5)] == []
    assert [c.task.id for c in _claim(db, agent, limit=5)] == [review]
    assert [c.task.id for c in _claim(db, someone, limit=5)] == [other]
    assert _task(db, later).status == "pending"


def test_heartbeat_extends_the_lease_and_records_no_history(db: Database) -> None:
    agent, (task_id,) = _setup(db, {})
    claim = _claim(db, agent, lease_s=5)[0]
    before = _actions(db, task_id)
    with db.transaction() as session:
        expires = queue.heartbeat(session, task_id, claim.lease_token, lease_s=600)
    assert expires > claim.lease_expires_at + timedelta(seconds=500)
    assert _task(db, task_id).lease_expires_at == expires
    assert _actions(db, task_id) == before


def test_a_task_is_completed_once_and_a_stale_token_changes_nothing(db: Database) -> None:
    agent, (task_id,) = _setup(db, {})
    claim = _claim(db, agent)[0]
    with db.transaction() as session, pytest.raises(ConflictError) as wrong:
        queue.complete_task(session, task_id, "not-the-token", result={"x": 1})
    assert wrong.value.details["reason"] == "not_the_lease_holder"
    with db.transaction() as session:
        done = queue.complete_task(session, task_id, claim.lease_token, result={"rows": 3})
    assert (done.status, done.result, done.lease_token) == ("completed", {"rows": 3}, None)
    with db.transaction() as session, pytest.raises(ConflictError):
        queue.complete_task(session, task_id, claim.lease_token, result={"rows": 4})
    with db.transaction() as session, pytest.raises(ConflictError):
        queue.heartbeat(session, task_id, claim.lease_token)
    assert _task(db, task_id).result == {"rows": 3}
    assert [a for a, _ in _actions(db, task_id)] == ["create", "claim", "complete"]
    with db.transaction() as session, pytest.raises(NotFoundError):
        queue.complete_task(session, 2**40, claim.lease_token)


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_refused(db: Database) -> None:
    agent, (task_id,) = _setup(db, {})
    with db.transaction() as session:
        other = new_agent(session).id
    first = _claim(db, agent, lease_s=0.05)[0]
    time.sleep(0.1)
    with db.transaction() as session, pytest.raises(ConflictError) as late:
        queue.heartbeat(session, task_id, first.lease_token)
    assert late.value.details["reason"] == "lease_expired"
    with db.statement_reads() as conn:
        assert [r.id for r in queue.list_expired_leases(conn)] == [task_id]
    second = _claim(db, other)[0]
    assert second.task.id == task_id and second.task.attempts == 2
    with db.transaction() as session, pytest.raises(ConflictError):
        queue.complete_task(session, task_id, first.lease_token, result="zombie")
    with db.transaction() as session:
        queue.complete_task(session, task_id, second.lease_token, result="fresh")
    assert _task(db, task_id).result == "fresh"
    actions = _actions(db, task_id)
    assert [a for a, _ in actions] == ["create", "claim", "expire", "claim", "complete"]
    assert actions[2][1] == "system:lease-expiry"


def test_failures_retry_with_backoff_until_the_attempts_are_used_up(db: Database) -> None:
    agent, (task_id,) = _setup(db, {"max_attempts": 2})
    claim = _claim(db, agent)[0]
    backoff = queue.Backoff(base_s=60, cap_s=600)
    with db.transaction() as session:
        retried = queue.fail_task(session, task_id, claim.lease_token, "boom 1", backoff=backoff)
    assert retried.status == "pending" and retried.last_error == "boom 1"
    delay = (retried.not_before - utcnow()).total_seconds()
    assert 25 <= delay <= 60  # half to all of the first step
    assert _claim(db, agent) == []  # not due yet
    later = retried.not_before + timedelta(seconds=1)
    claim = queue_claim_at(db, agent, later)
    with db.transaction() as session:
        failed = queue.fail_task(session, task_id, claim.lease_token, "boom 2", now=later)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 2, "boom 2")
    with db.statement_reads() as conn:
        assert [r.id for r in queue.list_dead_tasks(conn)] == [task_id]
    assert [a for a, _ in _actions(db, task_id)] == ["create", "claim", "retry", "claim", "fail"]


def queue_claim_at(db: Database, agent: int, when: object) -> queue.Claim:
    with db.transaction() as session:
        return queue.claim_tasks(session, agent, now=when)[0]  # type: ignore[arg-type]


def test_an_expired_lease_on_the_last_attempt_fails_the_task(db: Database) -> None:
    agent, (task_id,) = _setup(db, {"max_attempts": 1})
    _claim(db, agent, lease_s=0.01)
    time.sleep(0.05)
    assert _claim(db, agent) == []
    task = _task(db, task_id)
    assert task.status == "failed" and "lease expired" in task.last_error


def test_bad_claims_are_refused(db: Database) -> None:
    agent, _ = _setup(db, {})
    for kw in ({"lease_s": 0}, {"lease_s": 10**9}, {"limit": 0}, {"limit": 101}):
        with pytest.raises(ValidationError):
            _claim(db, agent, **kw)
    with pytest.raises(ValueError):
        _claim(db, agent, types=["no-such-type"])
    with pytest.raises(NotFoundError):
        _claim(db, 999_999)
    with db.transaction() as session, pytest.raises(ValidationError):
        queue.fail_task(session, 1, "t", "  ")


def test_a_status_change_by_hand_ends_the_lease(db: Database) -> None:
    agent, (task_id,) = _setup(db, {})
    claim = _claim(db, agent)[0]
    with db.transaction() as session:
        tasks.update_task(session, task_id, {"status": "failed"})
    with db.transaction() as session, pytest.raises(ConflictError):
        queue.complete_task(session, task_id, claim.lease_token)


def test_concurrent_claimers_never_take_one_task_twice(db: Database) -> None:
    agent, ids = _setup(db, *({} for _ in range(40)))
    taken: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            claims = _claim(db, agent, limit=2)
            if not claims:
                return
            with lock:
                taken.extend(c.task.id for c in claims)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(ids)
    with db.statement_reads() as conn:
        claims = conn.scalar(
            sa.select(sa.func.count())
            .select_from(HistoryEntry)
            .where(HistoryEntry.action == "claim")
        )
    assert claims == 40


def test_a_waiting_claimer_wakes_when_a_task_is_created(db: Database) -> None:
    agent, _ = _setup(db)
    signal = ReadySignal(db.engine)
    got: list[list[queue.Claim] | None] = []

    def attempt() -> list[queue.Claim] | None:
        return _claim(db, agent) or None

    def ready() -> bool:
        with db.statement_reads() as conn:
            return queue.has_ready_task(conn, agent)

    waiter = threading.Thread(target=lambda: got.append(wait_for(signal, attempt, ready, 10)))
    try:
        waiter.start()
        time.sleep(0.3)  # the waiter is waiting
        with db.transaction() as session:
            task_id = new_task(session).id
        created = time.monotonic()
        waiter.join(5)
        delay = time.monotonic() - created
    finally:
        signal.close()
    assert got and got[0] is not None and got[0][0].task.id == task_id
    assert delay < 0.5  # woken by the signal, not by the one-second fallback


def test_a_wait_with_nothing_to_do_ends_empty(db: Database) -> None:
    agent, _ = _setup(db)
    signal = ReadySignal(db.engine)
    try:
        started = time.monotonic()
        assert wait_for(signal, lambda: _claim(db, agent) or None, lambda: False, 0.3) is None
        assert 0.3 <= time.monotonic() - started < 2
    finally:
        signal.close()


def test_completed_at_and_status_are_only_in_the_row_through_the_store(db: Database) -> None:
    agent, (task_id,) = _setup(db, {})
    claim = _claim(db, agent)[0]
    with db.transaction() as session:
        queue.complete_task(session, task_id, claim.lease_token)
    with db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None and task.status is TaskStatus.COMPLETED
        assert task.completed_at is not None


def test_has_ready_task_sees_a_due_task_of_its_types_and_an_expired_lease(db: Database) -> None:
    agent, _ = _setup(db, {"not_before": utcnow() + timedelta(hours=1)})

    def ready(*types: str) -> bool:
        with db.statement_reads() as conn:
            return queue.has_ready_task(conn, agent, [TaskType(t) for t in types])

    assert not ready()  # only a task not yet due
    with db.transaction() as session:
        review = new_task(session, type="document_review").id
    assert ready() and ready("document_review") and not ready("analysis")
    [claim] = _claim(db, agent, types=["document_review"], lease_s=0.05)
    assert claim.task.id == review and not ready("document_review")
    time.sleep(0.1)  # the lease expires: the next claim would put it back and take it
    assert ready("analysis") and ready()
