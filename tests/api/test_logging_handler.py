"""AgentLogHandler: buffered, written in batches, flushed on close, never blocking the agent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.agent_logging import AgentLogHandler
from swarm_director.db import Database, make_engine
from swarm_director.models import AgentLog, Task, TaskType
from tests.api.conftest import url_text


def _new_task(db: Database, title: str = "handler test") -> int:
    with db.transaction() as session:
        task = Task(type=TaskType.ANALYSIS, title=title)
        session.add(task)
        session.flush()
        return task.id


def _logs(db: Database) -> list[AgentLog]:
    with db.read() as session:
        stmt = sa.select(AgentLog).order_by(AgentLog.timestamp, AgentLog.id)
        rows = list(session.scalars(stmt))
        session.expunge_all()  # keep the loaded values past the read's rollback
        return rows


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"agent.test.{time.monotonic_ns()}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def test_records_are_buffered_until_flushed(db: Database, logger: logging.Logger) -> None:
    task_id = _new_task(db)
    handler = AgentLogHandler(db, task_id=task_id, agent_type="writer", flush_interval=60)
    logger.addHandler(handler)
    for i in range(10):
        logger.info("step %d", i)
    time.sleep(0.2)
    assert _logs(db) == []  # nothing written yet: below batch size, interval not reached
    assert handler.pending == 10
    handler.flush()
    rows = _logs(db)
    assert [r.message for r in rows] == [f"step {i}" for i in range(10)]
    assert {r.task_id for r in rows} == {task_id} and {r.agent_type for r in rows} == {"writer"}


def test_a_full_batch_is_written_without_a_flush(db: Database, logger: logging.Logger) -> None:
    task_id = _new_task(db)
    handler = AgentLogHandler(db, task_id=task_id, batch_size=50, flush_interval=60)
    logger.addHandler(handler)
    for i in range(120):
        logger.info("record %d", i)
    assert _wait_for(lambda: len(_logs(db)) >= 100)
    assert handler.written >= 100


def test_close_writes_what_is_buffered(db: Database, logger: logging.Logger) -> None:
    task_id = _new_task(db)
    handler = AgentLogHandler(db, task_id=task_id, flush_interval=60)
    logger.addHandler(handler)
    for i in range(25):
        logger.warning("w%d", i)
    logger.removeHandler(handler)
    handler.close()
    assert len(_logs(db)) == 25
    assert handler.sent == handler.written == 25 and handler.dropped == 0


def test_fields_come_from_extra_and_defaults(db: Database, logger: logging.Logger) -> None:
    t1 = _new_task(db, "one")
    t2 = _new_task(db, "two")
    handler = AgentLogHandler(
        db, task_id=t1, agent_type="director", session_id="run-1", flush_interval=60
    )
    logger.addHandler(handler)
    logger.debug("default fields")
    logger.critical(
        "overridden",
        extra={
            "task_id": t2,
            "agent_type": "email_agent",
            "session_id": "run-2",
            "metadata": {"draft": 3, "odd": object()},
        },
    )
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed to send")
    logging.getLogger("unrelated").info("not attached")
    handler.flush()
    first, second, third = _logs(db)
    assert (first.task_id, first.agent_type, first.session_id) == (t1, "director", "run-1")
    assert first.log_level == "debug"
    assert (second.task_id, second.agent_type, second.session_id) == (t2, "email_agent", "run-2")
    assert second.log_level == "error"  # CRITICAL maps to the highest stored level
    assert second.meta is not None
    assert second.meta["draft"] == 3 and second.meta["level_name"] == "CRITICAL"
    assert isinstance(second.meta["odd"], str)
    assert second.meta["logger"] == logger.name
    assert "ValueError: boom" in third.message and third.log_level == "error"
    assert second.timestamp.tzinfo is not None


def test_records_without_a_task_are_skipped(db: Database, logger: logging.Logger) -> None:
    task_id = _new_task(db)
    handler = AgentLogHandler(db, flush_interval=60)
    logger.addHandler(handler)
    logger.info("no task")
    logger.info("with task", extra={"task_id": task_id})
    handler.flush()
    assert [r.message for r in _logs(db)] == ["with task"]
    assert handler.skipped == 1


def test_rows_the_store_refuses_do_not_sink_the_batch(
    db: Database, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = _new_task(db)
    handler = AgentLogHandler(db, task_id=task_id, flush_interval=60)
    logger.addHandler(handler)
    logger.info("good 1")
    logger.info("unknown task", extra={"task_id": 987654})
    logger.info("unknown agent", extra={"agent_id": 987654})
    logger.info("good 2")
    handler.flush()
    assert [r.message for r in _logs(db)] == ["good 1", "good 2"]
    assert handler.rejected == 2
    assert "refused" in capsys.readouterr().err


def test_the_writers_own_logging_does_not_feed_back(db: Database) -> None:
    task_id = _new_task(db)
    root = logging.getLogger()
    sql_logger = logging.getLogger("sqlalchemy.engine")
    old_level = sql_logger.level
    handler = AgentLogHandler(db, task_id=task_id, flush_interval=60)
    root.addHandler(handler)
    sql_logger.setLevel(logging.INFO)  # every statement the writer runs is logged to root
    try:
        logging.getLogger("agent").warning("only me")
        handler.flush()
        time.sleep(0.3)
        handler.flush()
    finally:
        sql_logger.setLevel(old_level)
        root.removeHandler(handler)
        handler.close()
    assert [r.message for r in _logs(db)] == ["only me"]


def _hold_write_lock(url: URL, held: threading.Event, release: threading.Event) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.begin()  # on SQLite: BEGIN IMMEDIATE, the write lock (see db/engine.py)
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            held.set()
            release.wait(10)
            conn.rollback()
    finally:
        engine.dispose()


def test_a_busy_database_never_blocks_the_agent(db_url: URL, logger: logging.Logger) -> None:
    # A short busy timeout makes the SQLite writer fail and retry while the lock is held;
    # PostgreSQL's writer simply waits. Either way the agent's log calls return at once.
    db = Database(make_engine(url_text(db_url), busy_timeout_s=0.1))
    try:
        task_id = _new_task(db)
        handler = AgentLogHandler(
            db,
            task_id=task_id,
            batch_size=100,
            flush_interval=0.05,
            max_backoff=0.2,
            flush_timeout=0.5,
        )
        logger.addHandler(handler)
        held, release = threading.Event(), threading.Event()
        locker = threading.Thread(target=_hold_write_lock, args=(db_url, held, release))
        locker.start()
        assert held.wait(10)
        started = time.monotonic()
        for i in range(2000):
            logger.info("while locked %d", i)
        handler.flush()  # bounded by flush_timeout even though nothing can be written
        elapsed = time.monotonic() - started
        assert _logs(db) == [] and handler.pending == 2000  # really blocked meanwhile
        release.set()
        locker.join()
        assert elapsed < 2.0, f"logging blocked for {elapsed:.2f}s"
        logger.removeHandler(handler)
        handler.close()
        assert len(_logs(db)) == 2000
        assert handler.dropped == 0
    finally:
        db.dispose()


def test_a_database_that_is_down_never_crashes_the_agent(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = AgentLogHandler(
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        task_id=1,
        flush_interval=0.05,
        max_backoff=0.1,
        flush_timeout=0.3,
        close_timeout=0.5,
        max_buffer=100,
    )
    logger.addHandler(handler)
    started = time.monotonic()
    for i in range(150):
        logger.error("nobody hears %d", i)
    handler.flush()
    logger.removeHandler(handler)
    handler.close()
    assert time.monotonic() - started < 3.0
    # The buffer kept the newest 100; those were lost at close, reported on stderr.
    assert handler.dropped == 150 and handler.written == 0
    assert "not stored at close" in capsys.readouterr().err
