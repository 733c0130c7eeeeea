"""Idempotent batch ingest: a retried batch with the same key is stored once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from swarm_director.db import Database, utcnow
from swarm_director.errors import ConflictError, ValidationError
from swarm_director.models import AgentLog, IdempotencyKey
from swarm_director.ops.retention.expiry import expire_idempotency_keys
from swarm_director.store import logs
from tests.store.conftest import new_task


def batch(n: int, word: str = "step") -> list[dict[str, Any]]:
    return [{"agent_type": "worker", "message": f"{word} {i}"} for i in range(n)]


def _logs(db: Database, task_id: int) -> int:
    with db.read() as s:
        stmt = sa.select(sa.func.count()).select_from(AgentLog).where(AgentLog.task_id == task_id)
        return int(s.scalar(stmt) or 0)


def _task(db: Database) -> int:
    with db.transaction() as s:
        return new_task(s).id


def test_retry_with_same_key_returns_first_result_and_stores_nothing(db: Database) -> None:
    task_id = _task(db)
    with db.transaction() as s:
        assert logs.add_logs(s, task_id, batch(5), idempotency_key="k-1") == 5
    with db.transaction() as s:
        assert logs.add_logs(s, task_id, batch(5), idempotency_key="k-1") == 5
    assert _logs(db, task_id) == 5


def test_same_key_with_another_body_is_a_conflict(db: Database) -> None:
    task_id = _task(db)
    with db.transaction() as s:
        logs.add_logs(s, task_id, batch(3), idempotency_key="k-1")
    with pytest.raises(ConflictError, match="different request body"), db.transaction() as s:
        logs.add_logs(s, task_id, batch(3, "other"), idempotency_key="k-1")
    assert _logs(db, task_id) == 3


def test_expired_keys_are_deleted_and_a_later_retry_stores_again(db: Database) -> None:
    task_id = _task(db)
    with db.transaction() as s:
        logs.add_logs(s, task_id, batch(2), idempotency_key="old")
        logs.add_logs(s, task_id, batch(2), idempotency_key="recent")
    with db.engine.begin() as conn:  # "old" was made eight days ago
        conn.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utcnow() - timedelta(days=8))
        )
    assert expire_idempotency_keys(db.engine, timedelta(days=7)) == 1
    with db.read() as s:
        assert s.scalars(sa.select(IdempotencyKey.key)).all() == ["recent"]
    with db.transaction() as s:  # a retry within the window is still recognised...
        logs.add_logs(s, task_id, batch(2), idempotency_key="recent")
    assert _logs(db, task_id) == 4
    with db.transaction() as s:  # ...one after it is a new batch
        logs.add_logs(s, task_id, batch(2), idempotency_key="old")
    assert _logs(db, task_id) == 6


def test_key_is_scoped_to_the_task(db: Database) -> None:
    first, second = _task(db), _task(db)
    with db.transaction() as s:
        logs.add_logs(s, first, batch(2), idempotency_key="shared")
        logs.add_logs(s, second, batch(2), idempotency_key="shared")
    assert _logs(db, first) == _logs(db, second) == 2


def test_without_a_key_every_call_stores(db: Database) -> None:
    task_id = _task(db)
    for _ in range(2):
        with db.transaction() as s:
            logs.add_logs(s, task_id, batch(2))
    assert _logs(db, task_id) == 4


@pytest.mark.parametrize("key", ["", "x" * 201, "tab\tkey", "clé"])
def test_malformed_key_is_rejected_and_nothing_stored(db: Database, key: str) -> None:
    task_id = _task(db)
    with pytest.raises(ValidationError) as info, db.transaction() as s:
        logs.add_logs(s, task_id, batch(2), idempotency_key=key)
    assert "idempotency_key" in info.value.details["fields"]
    assert _logs(db, task_id) == 0


def test_rolled_back_attempt_does_not_consume_the_key(db: Database) -> None:
    task_id = _task(db)
    with pytest.raises(RuntimeError), db.transaction() as s:
        logs.add_logs(s, task_id, batch(2), idempotency_key="k-1")
        raise RuntimeError("client connection dropped before commit")
    with db.transaction() as s:
        assert logs.add_logs(s, task_id, batch(2), idempotency_key="k-1") == 2
    assert _logs(db, task_id) == 2
    with db.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 1


def test_concurrent_retries_store_the_batch_once(db: Database) -> None:
    task_id = _task(db)
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            barrier.wait()
            with db.transaction() as s:
                results.append(logs.add_logs(s, task_id, batch(50), idempotency_key="same"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert results == [50, 50, 50, 50]
    assert _logs(db, task_id) == 50
