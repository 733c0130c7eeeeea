"""The log handlers' batching core, with a destination the test controls (no database, no
server): the queue bound, flush and close, re-sends with the same key, refusals, counters."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from swarm_director.agent_logging import AgentLogHandler
from swarm_director.client import RemoteLogHandler
from swarm_director.log_batching import Batch, BatchingLogHandler, Refused, SendLater
from swarm_director.schemas.log_records import RecordDefaults


class Destination(BatchingLogHandler):
    """Stores batches in a list; ``away`` makes every send fail for now, ``down`` the sends of
    some tasks; ``refuse`` names messages it will never store."""

    destination = "test destination"
    kind = "test"

    def __init__(self, task_id: int | None = 7, **options: Any) -> None:
        self.away = threading.Event()
        self.down: set[int] = set()
        self.refuse: set[str] = set()
        self.calls: list[tuple[int, list[str], str]] = []
        self.stored: list[str] = []
        self.released = 0
        super().__init__(RecordDefaults(task_id, "tester", None, None), **options)

    def _send(self, batch: Batch) -> int:
        messages = [row["message"] for row in batch.rows]
        self.calls.append((batch.task_id, messages, batch.key))
        if self.away.is_set() or batch.task_id in self.down:
            raise SendLater("test destination away")
        if self.refuse.intersection(messages):
            raise Refused("a refused message")
        self.stored += messages
        return len(messages)

    def _release(self) -> None:
        self.released += 1


@pytest.fixture
def make() -> Iterator[type[Destination]]:
    made: list[Destination] = []

    class Tracked(Destination):
        def __init__(self, task_id: int | None = 7, **options: Any) -> None:
            super().__init__(task_id, **options)
            made.append(self)

    yield Tracked
    for handler in made:
        handler.away.clear()
        handler.close()


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"batching.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def _wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_a_full_queue_drops_the_oldest_counts_and_reports_them(
    make: type[Destination], capsys: pytest.CaptureFixture[str]
) -> None:
    handler = make(max_queue=3, flush_interval=60, max_backoff=0.1, flush_timeout=0.3)
    handler.away.set()
    logger = _logger(handler)
    logger.info("first")
    handler.flush()  # gives up after 0.3 s: "first" is in flight, failing
    handler.flush_timeout = 5
    assert handler.pending == 1 and handler.last_error == "test destination away"
    for i in range(5):
        logger.info("queued %d", i)
    assert handler.dropped == 2 and handler.pending == 4
    handler.away.clear()
    handler.flush()
    first, report, *queued = handler.stored  # the report goes right after the batch in flight
    assert (first, queued) == ("first", ["queued 2", "queued 3", "queued 4"])
    assert report.startswith("Tracked dropped 2 log records: its queue was full (bound 3)")
    assert handler.sent == 5 and handler.pending == 0 and handler.last_error is None
    assert "Tracked dropped 2 log records" in capsys.readouterr().err


def test_a_failed_batch_is_sent_again_whole_with_its_key(make: type[Destination]) -> None:
    handler = make(flush_interval=60, max_backoff=0.05, flush_timeout=0.3)
    handler.away.set()
    logger = _logger(handler)
    for i in range(3):
        logger.info("m%d", i)
    handler.flush()
    assert len(handler.calls) >= 2  # tried, backed off, tried again
    handler.flush_timeout = 5
    handler.away.clear()
    handler.flush()
    assert handler.stored == ["m0", "m1", "m2"] and handler.sent == 3
    assert {(task, tuple(messages), key) for task, messages, key in handler.calls} == {
        (7, ("m0", "m1", "m2"), handler.calls[0][2])
    }


def test_close_sends_what_is_queued_and_releases_once(make: type[Destination]) -> None:
    handler = make(flush_interval=60)
    logger = _logger(handler)
    for i in range(4):
        logger.warning("w%d", i)
    time.sleep(0.3)
    assert handler.stored == [] and handler.pending == 4  # below batch size, interval far
    handler.close()
    handler.close()
    assert handler.stored == ["w0", "w1", "w2", "w3"]
    assert (handler.sent, handler.dropped, handler.pending, handler.released) == (4, 0, 0, 1)


def test_close_gives_up_within_its_timeout_and_counts_the_rest(
    make: type[Destination], capsys: pytest.CaptureFixture[str]
) -> None:
    handler = make(close_timeout=0.5, max_backoff=0.05, flush_interval=60)
    handler.away.set()
    logger = _logger(handler)
    for i in range(3):
        logger.error("lost %d", i)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 2
    assert (handler.sent, handler.dropped, handler.pending) == (0, 3, 0)
    assert "3 log records not sent at close: test destination away" in capsys.readouterr().err


def test_a_refused_batch_is_sent_row_by_row_and_only_the_bad_row_is_lost(
    make: type[Destination], capsys: pytest.CaptureFixture[str]
) -> None:
    handler = make(flush_interval=60)
    handler.refuse.add("bad")
    logger = _logger(handler)
    for message in ("good 1", "bad", "good 2"):
        logger.info(message)
    handler.flush()
    assert handler.stored == ["good 1", "good 2"]
    assert (handler.sent, handler.rejected, handler.dropped) == (2, 1, 0)
    assert "1 log records refused by the test destination: a refused message" in (
        capsys.readouterr().err
    )


def test_batches_are_split_by_task_and_records_without_one_skipped(
    make: type[Destination],
) -> None:
    handler = make(task_id=None, batch_size=10, flush_interval=60)
    logger = _logger(handler)
    logger.info("to 1", extra={"task_id": 1})
    logger.info("nowhere")
    logger.info("to 2", extra={"task_id": 2})
    logger.info("to 1 again", extra={"task_id": 1})
    handler.flush()
    assert [(task, messages) for task, messages, _ in handler.calls] == [
        (1, ["to 1", "to 1 again"]),
        (2, ["to 2"]),
    ]
    assert (handler.sent, handler.skipped) == (3, 1)


def test_a_full_batch_leaves_without_waiting_for_the_interval(make: type[Destination]) -> None:
    handler = make(batch_size=5, flush_interval=60)
    logger = _logger(handler)
    for i in range(5):
        logger.info("b%d", i)
    assert _wait_for(lambda: handler.sent == 5)


def test_both_handlers_are_this_core() -> None:
    """The database and the HTTP handler share the queue, thread and counters; they differ
    only in how a batch leaves."""
    for handler in (AgentLogHandler, RemoteLogHandler):
        assert issubclass(handler, BatchingLogHandler)
        own = {name for name in vars(handler) if callable(getattr(handler, name))}
        assert own <= {"__init__", "_send", "_release"}, own


def test_a_flush_during_a_back_off_still_sends_the_queue(make: type[Destination]) -> None:
    # The flush's wake-up used to be spent on the back-off: the batch in flight went out once
    # the destination was back, and the queue behind it waited for flush_interval (60 s).
    handler = make(flush_interval=60, max_backoff=1.0, flush_timeout=0.3)
    handler.away.set()
    logger = _logger(handler)
    logger.info("in flight")
    handler.flush()  # fails a few times, backing off longer each time
    logger.info("queued 1")
    logger.info("queued 2")
    handler.away.clear()
    handler.flush_timeout = 5
    started = time.monotonic()
    handler.flush()
    assert handler.stored == ["in flight", "queued 1", "queued 2"]
    assert time.monotonic() - started < 2.5


def test_a_task_whose_batch_failed_does_not_send_another_tasks_batch_again(
    make: type[Destination],
) -> None:
    # The database handler used to put a whole failed take back in its buffer, so the rows of
    # a task already stored in it were written a second time.
    handler = make(task_id=None, flush_interval=60, max_backoff=0.05, flush_timeout=0.3)
    handler.down.add(2)
    logger = _logger(handler)
    logger.info("to 1", extra={"task_id": 1})
    logger.info("to 2", extra={"task_id": 2})
    handler.flush()  # task 1's batch is through, task 2's keeps failing
    assert handler.stored == ["to 1"] and handler.pending == 1
    handler.down.clear()
    handler.flush_timeout = 5
    handler.flush()
    assert handler.stored == ["to 1", "to 2"]
    assert [messages for _, messages, _ in handler.calls].count(["to 1"]) == 1
