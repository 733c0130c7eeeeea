"""Statement timings: shapes, the per-process record, and the shared table it flushes into."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.models import StatementTiming
from swarm_director.ops.stats import timings_table
from swarm_director.ops.stats.collect import collect_stats
from swarm_director.ops.stats.timings import StatementTimings, shape_of
from swarm_director.ops.stats.timings_table import ShapeStats
from tests.ops.factory import add_task, insert_logs


def test_statement_shapes_fold_literals_and_lists() -> None:
    assert shape_of("SELECT * FROM t WHERE id IN (?, ?, ?) AND name = 'x'") == (
        "SELECT * FROM t WHERE id IN (...) AND name = ?"
    )
    assert shape_of("DELETE FROM a WHERE a.id IN (%(id_1_1)s::BIGINT, %(id_1_2)s::BIGINT)") == (
        "DELETE FROM a WHERE a.id IN (...)"
    )
    assert shape_of("SELECT  1\n FROM t LIMIT 50") == "SELECT ? FROM t LIMIT ?"


def test_the_record_keeps_the_slowest_shapes_within_capacity() -> None:
    timings = StatementTimings(capacity=3)
    for i in range(10):
        timings.record(f"SELECT {i} FROM t{i}", seconds=i / 100)
    timings.record("SELECT 9 FROM t9", seconds=0.01)
    slowest = timings.pending()
    assert [s.shape for s in slowest] == [
        "SELECT ? FROM t9",
        "SELECT ? FROM t8",
        "SELECT ? FROM t7",
    ]
    assert slowest[0].count == 2 and slowest[0].max_s == 0.09
    assert not timings.flush()  # installed on no engine: nowhere to go, nothing lost
    assert len(timings.pending()) == 3


def _rows(db: Database) -> dict[str, StatementTiming]:
    with db.read() as session:
        return {row.shape: row for row in session.scalars(sa.select(StatementTiming))}


def test_merge_adds_up_processes_per_shape_and_prunes_to_the_slowest(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    slow = ShapeStats("SELECT ? FROM a", count=2, total_s=0.004, max_s=0.003, last_seen=now - 5)
    fast = ShapeStats("SELECT ? FROM b", count=1, total_s=0.001, max_s=0.001, last_seen=now)
    monkeypatch.setattr(timings_table, "source_name", lambda: "host-a:1")
    timings_table.merge(db.engine, [slow, fast], keep=10, lock_wait_s=1)
    again = ShapeStats("SELECT ? FROM a", count=3, total_s=0.003, max_s=0.002, last_seen=now)
    monkeypatch.setattr(timings_table, "source_name", lambda: "host-b:2")
    timings_table.merge(db.engine, [again], keep=10, lock_wait_s=1)
    timings_table.merge(db.engine, [again], keep=10, lock_wait_s=1)  # a source is listed once
    rows = _rows(db)
    merged = rows["SELECT ? FROM a"]
    assert merged.calls == 8
    assert merged.total_ms == pytest.approx(10.0)
    assert merged.max_ms == pytest.approx(3.0)
    assert merged.last_seen.timestamp() == pytest.approx(now, abs=0.01)
    assert merged.sources.split() == ["host-a:1", "host-b:2"]
    assert rows["SELECT ? FROM b"].sources == "host-a:1"
    timings_table.merge(db.engine, [again], keep=1, lock_wait_s=1)
    assert list(_rows(db)) == ["SELECT ? FROM a"]  # the faster shape was pruned


def test_an_engine_s_statements_are_flushed_without_the_flush_s_own(db: Database) -> None:
    timings = StatementTimings()
    timings.install(db.engine)
    timings.install(db.engine)  # idempotent
    try:
        with db.engine.connect() as conn:
            for _ in range(3):
                conn.execute(sa.text("SELECT count(*) FROM agent_logs WHERE id > 5")).all()
        insert_logs(db.engine, add_task(db), 5)  # executemany is timed too
        assert timings.flush()
        assert timings.pending() == []  # the flush recorded none of its own statements
        assert timings.flush()  # nothing new: nothing to do
    finally:
        timings.stop()
    rows = _rows(db)
    assert rows["SELECT count(*) FROM agent_logs WHERE id > ?"].calls == 3
    assert any(shape.startswith("INSERT INTO agent_logs") for shape in rows)
    assert not any("statement_timings" in shape for shape in rows)
    stats = collect_stats(db.engine)
    assert any("agent_logs WHERE id > ?" in s["shape"] for s in stats.slow_statements)


@contextmanager
def _table_locked(db: Database) -> Iterator[None]:
    """Another connection holds the lock a flush needs."""
    with db.engine.connect() as other:
        if db.dialect == "sqlite":
            other.execute(sa.text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock
        else:
            other.exec_driver_sql("LOCK TABLE statement_timings IN EXCLUSIVE MODE")
        yield
        other.rollback()


def test_a_busy_database_makes_the_flush_give_up_quickly_and_keep_its_counters(
    db: Database,
) -> None:
    timings = StatementTimings()
    timings.install(db.engine)
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM tasks WHERE id > 1")).all()
        with _table_locked(db):
            began = time.monotonic()
            assert not timings.flush()
            assert time.monotonic() - began < 2  # not the 30 s busy timeout of writers
        assert [s.count for s in timings.pending() if "FROM tasks" in s.shape] == [1]
        assert timings.flush()
    finally:
        timings.stop()
    assert _rows(db)["SELECT count(*) FROM tasks WHERE id > ?"].calls == 1


def test_the_flusher_thread_runs_on_its_own_and_stops(db: Database) -> None:
    timings = StatementTimings(flush_every_s=0.1)
    timings.install(db.engine)
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM drafts WHERE id > 2")).all()
        deadline = time.monotonic() + 10
        while "SELECT count(*) FROM drafts WHERE id > ?" not in _rows(db):
            assert time.monotonic() < deadline, "the flusher never wrote"
            time.sleep(0.05)
    finally:
        timings.stop()
    assert timings._thread is not None and not timings._thread.is_alive()
