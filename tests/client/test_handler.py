"""RemoteLogHandler against a real server that goes away and comes back."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from swarm_director.client import Client, RemoteLogHandler
from swarm_director.schemas import LogOut
from tests.client.servers import TOKEN, ServeProcess


@pytest.fixture
def own_server(database_url: URL, tmp_path: Path) -> Iterator[ServeProcess]:
    """A server this test may kill and restart (on the same port)."""
    process = ServeProcess(database_url.render_as_string(hide_password=False), tmp_path)
    process.start()
    yield process
    process.stop()


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"agent.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def _stored(client: Client, task_id: int) -> list[LogOut]:
    return list(client.iter_task_logs(task_id, order="asc", limit=1000))


def test_records_logged_while_the_server_is_down_arrive_once_in_order(
    own_server: ServeProcess,
) -> None:
    with Client(own_server.url, TOKEN) as client:
        task = client.create_task({"type": "analysis", "title": "handler outage"})
    handler = RemoteLogHandler(
        own_server.url,
        task_id=task.id,
        agent_type="worker",
        token=TOKEN,
        batch_size=25,
        flush_interval=0.1,
        flush_timeout=60,
        max_backoff=0.5,
    )
    logger = _logger(handler)
    try:
        for i in range(10):
            logger.info("up %d", i)
        handler.flush()
        assert handler.sent == 10
        own_server.kill()

        def agent(name: str) -> None:
            for i in range(150):
                logger.info("%s %d", name, i, extra={"metadata": {"thread": name, "seq": i}})
                if i % 50 == 0:
                    time.sleep(0.2)  # a few batches meet the dead server

        threads = [threading.Thread(target=agent, args=(name,)) for name in ("t1", "t2")]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started < 5  # logging never waited for the network
        time.sleep(1.0)  # the handler keeps failing for a while
        assert handler.pending == 300 and handler.last_error is not None
        own_server.start()
        handler.flush()
        assert handler.pending == 0
    finally:
        handler.close()
    with Client(own_server.url, TOKEN) as client:
        rows = _stored(client, task.id)
    assert len(rows) == 310 == handler.sent  # every record exactly once
    assert handler.dropped == 0
    for name in ("t1", "t2"):
        seqs = [r.metadata["seq"] for r in rows if (r.metadata or {}).get("thread") == name]
        assert seqs == list(range(150))  # in order per thread (ids are insert order)


def test_the_queue_bound_drops_the_oldest_counts_and_reports_them(
    own_server: ServeProcess,
) -> None:
    with Client(own_server.url, TOKEN) as client:
        task = client.create_task({"type": "analysis", "title": "handler bound"})
    own_server.kill()
    handler = RemoteLogHandler(
        own_server.url,
        task_id=task.id,
        agent_type="worker",
        token=TOKEN,
        max_queue=50,
        flush_interval=0.3,
        flush_timeout=60,
        max_backoff=0.5,
    )
    logger = _logger(handler)
    try:
        for i in range(200):  # far faster than the handler's first send
            logger.warning("record %d", i)
        assert handler.dropped == 150
        time.sleep(1.0)
        own_server.start()
        handler.flush()
    finally:
        handler.close()
    with Client(own_server.url, TOKEN) as client:
        rows = _stored(client, task.id)
    assert [r.message for r in rows[:50]] == [f"record {i}" for i in range(150, 200)]
    assert len(rows) == 51
    report = rows[50]
    assert report.log_level == "warning" and "dropped 150 log records" in report.message
    assert report.metadata == {"dropped": 150, "dropped_total": 150, "handler": "remote"}


def test_extra_fields_map_like_the_database_handler(own_server: ServeProcess) -> None:
    with Client(own_server.url, TOKEN) as client:
        task = client.create_task({"type": "analysis", "title": "extras"})
        other = client.create_task({"type": "analysis", "title": "other"})
        agent = client.create_agent({"name": f"a-{uuid.uuid4().hex[:6]}", "agent_type": "worker"})
    handler = RemoteLogHandler(
        own_server.url, task_id=task.id, agent_type="director", token=TOKEN, session_id="run-1"
    )
    unbound = RemoteLogHandler(own_server.url, task_id=None, agent_type=None, token=TOKEN)
    logger = _logger(handler)
    try:
        logger.debug("plain")
        logger.error(
            "to %s",
            "the other task",
            extra={
                "task_id": other.id,
                "agent_id": agent.id,
                "agent_type": "email_agent",
                "session_id": "run-2",
                "metadata": {"draft": 3, "nan": float("nan")},
            },
        )
        _logger(unbound).info("no task anywhere")
        handler.flush()
    finally:
        handler.close()
        unbound.close()
    assert unbound.skipped == 1 and unbound.sent == 0
    with Client(own_server.url, TOKEN) as client:
        (plain,) = _stored(client, task.id)
        (routed,) = _stored(client, other.id)
    assert (plain.agent_type, plain.log_level, plain.session_id) == ("director", "debug", "run-1")
    assert plain.metadata is not None and plain.metadata["function"] == (
        "test_extra_fields_map_like_the_database_handler"
    )
    assert routed.message == "to the other task" and routed.log_level == "error"
    assert (routed.agent_type, routed.agent_id, routed.session_id) == (
        "email_agent",
        agent.id,
        "run-2",
    )
    assert routed.metadata is not None
    assert routed.metadata["draft"] == 3 and routed.metadata["nan"] == "nan"


def test_close_gives_up_within_its_timeout_when_the_server_is_gone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A port held bound but not listening refuses every connection, and no other test's
    # server can take it meanwhile (a killed server's port could be, by a parallel worker).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        handler = RemoteLogHandler(
            url, task_id=1, agent_type="worker", token=TOKEN, close_timeout=1.0
        )
        _logger(handler).info("never delivered")
        started = time.monotonic()
        handler.close()
        assert time.monotonic() - started < 3
    assert handler.dropped == 1
    assert "1 log records not sent at close" in capsys.readouterr().err


def test_interpreter_exit_sends_what_is_queued(own_server: ServeProcess) -> None:
    with Client(own_server.url, TOKEN) as client:
        task = client.create_task({"type": "analysis", "title": "atexit"})
    script = (
        "import logging\n"
        "from swarm_director.client import RemoteLogHandler\n"
        f"h = RemoteLogHandler({own_server.url!r}, task_id={task.id}, agent_type='w',"
        f" token={TOKEN!r}, flush_interval=60)\n"
        "log = logging.getLogger('exit'); log.addHandler(h); log.setLevel(logging.INFO)\n"
        "for i in range(5): log.info('bye %d', i)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with Client(own_server.url, TOKEN) as client:
        assert [r.message for r in _stored(client, task.id)] == [f"bye {i}" for i in range(5)]
