"""Two ``swarm-director serve`` processes on one PostgreSQL database, writers on both.

What a deployment behind a load balancer does: every request may land on either server, so
the guarantees of one server must hold across two. Writers (threads speaking HTTP, each
bound to one server, with some requests crossing to the other) mix batch log ingest with
idempotency keys (a retry of the same batch goes to the *other* server), task status moves
guarded by ``expected_status`` (read on one server, written on the other), draft versions and
messages that bump counters. Passing means:

* no caller saw a 5xx or a transport error (a deadlock or lock error would be a 5xx);
  the only refusals are the documented 409s of a lost ``expected_status`` race;
* nothing lost or doubled: logs per task equal the acknowledged batches (a replayed key
  stores nothing), draft versions are 1..n, message counters and agents' sent counters are
  exact, each task's status is where its acknowledged moves lead; ``db check`` is clean.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.db import make_engine
from swarm_director.models import Agent, AgentLog, Conversation, Draft, Message, Task
from swarm_director.ops.checks.db_check import run_check
from tests.reliability.conftest import Figures, Scale, migrated_database, url_text
from tests.reliability.procs import Server
from tests.reliability.test_contention import _setup
from tests.serving import request

CYCLE = {"pending": "in_progress", "in_progress": "failed", "failed": "pending"}
BATCH = 50
WRITERS_PER_SERVER = 2


@pytest.fixture
def pg_url(tmp_path: Path, pg_available: None) -> Iterator[URL]:
    with migrated_database("postgresql", tmp_path) as url:
        yield url


class _Writer(threading.Thread):
    def __init__(self, wid: int, ports: tuple[int, int], plan: dict[str, Any], seconds: float):
        super().__init__(name=f"writer{wid}", daemon=True)
        self.wid, self.port, self.other = wid, ports[wid % 2], ports[1 - wid % 2]
        self.plan, self.seconds = plan, seconds
        self.rng = random.Random(wid)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def call(
        self,
        port: int,
        method: str,
        path: str,
        body: Any = None,
        *,
        refusable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            status, payload = request(port, method, path, body, headers=headers, timeout=60)
        except Exception as error:  # a transport error reached a caller: a failure
            self.errors.append(f"{method} {path} on {port}: {error!r}")
            return None
        if status == 409 and refusable:
            return "refused"
        if not 200 <= status < 300:
            self.errors.append(f"{method} {path} on {port}: {status} {payload}")
            return None
        return payload

    def ingest(self) -> None:
        task_id = self.rng.choice(self.plan["tasks"])
        rows = [{"agent_type": f"w{self.wid}", "message": "bulk", "session_id": "ingest"}] * BATCH
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        path = f"/api/tasks/{task_id}/logs"
        first = self.call(self.port, "POST", path, rows, headers=headers)
        if first is None:
            return
        self.counts[f"logs:{task_id}"] += BATCH
        if self.rng.random() < 0.3:  # the client timed out: it retries on the other server
            again = self.call(self.other, "POST", path, rows, headers=headers)
            if again is not None and again != first:
                self.errors.append(f"replayed ingest answered {again}, first {first}")
            self.counts["replays"] += 1

    def move(self) -> None:
        task_id = self.rng.choice(self.plan["tasks"])
        task = self.call(self.other, "GET", f"/api/tasks/{task_id}")
        if task is None:
            return
        current = task["status"]
        body = {"status": CYCLE[current], "expected_status": current}
        answer = self.call(self.port, "PATCH", f"/api/tasks/{task_id}", body, refusable=True)
        if answer == "refused":
            self.counts["refused"] += 1
        elif answer is not None:
            self.counts[f"moves:{task_id}"] += 1

    def draft(self) -> None:
        task_id = self.rng.choice(self.plan["tasks"])
        body = {"content": f"w{self.wid}"}
        if self.call(self.port, "POST", f"/api/tasks/{task_id}/drafts", body) is not None:
            self.counts[f"drafts:{task_id}"] += 1

    def message(self) -> None:
        conv = self.rng.choice(self.plan["conversations"])
        sender = self.rng.choice(self.plan["core_agents"])
        body = {"content": "hi", "sender_agent_id": sender}
        if self.call(self.port, "POST", f"/api/conversations/{conv}/messages", body) is not None:
            self.counts[f"messages:{conv}"] += 1
            self.counts[f"sent:{sender}"] += 1

    def run(self) -> None:
        ops = [self.ingest] * 3 + [self.move] * 3 + [self.draft] * 2 + [self.message] * 2
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            self.rng.choice(ops)()
            self.counts["ops"] += 1


def _final_status(moves: int) -> str:
    state = "pending"
    for _ in range(moves):
        state = CYCLE[state]
    return state


def test_two_servers_on_one_postgresql_lose_nothing(
    pg_url: URL, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    plan = _setup(pg_url)
    servers = [Server(url_text(pg_url), tmp_path / f"server{i}.log", workers=1) for i in (0, 1)]
    try:
        for server in servers:
            server.start()
        ports = (servers[0].port, servers[1].port)
        seconds = max(scale.contention_seconds, 3.0)
        writers = [_Writer(w, ports, plan, seconds) for w in range(2 * WRITERS_PER_SERVER)]
        started = time.monotonic()
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=seconds + 120)
            assert not writer.is_alive(), f"{writer.name} hung"
        elapsed = time.monotonic() - started
    finally:
        for server in servers:
            server.stop()

    errors = [e for w in writers for e in w.errors]
    assert not errors, "errors reached a caller:\n" + "\n".join(errors[:10])
    counts: Counter[str] = Counter()
    for writer in writers:
        counts.update(writer.counts)
    assert counts["ops"] > 0 and sum(v for k, v in counts.items() if k.startswith("logs:")) > 0

    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            for task_id in plan["tasks"]:
                ingested = conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(AgentLog)
                    .where(AgentLog.task_id == task_id, AgentLog.session_id == "ingest")
                )
                assert ingested == counts[f"logs:{task_id}"], f"logs of task {task_id}"
                versions = list(
                    conn.scalars(
                        sa.select(Draft.version)
                        .where(Draft.task_id == task_id)
                        .order_by(Draft.version)
                    )
                )
                assert versions == list(range(1, counts[f"drafts:{task_id}"] + 1))
                status = conn.scalar(sa.select(Task.status).where(Task.id == task_id))
                assert status is not None
                assert status.value == _final_status(counts[f"moves:{task_id}"]), task_id
            for conv_id in plan["conversations"]:
                stored, counter = conn.execute(
                    sa.select(
                        sa.select(sa.func.count())
                        .select_from(Message)
                        .where(Message.conversation_id == conv_id)
                        .scalar_subquery(),
                        Conversation.message_count,
                    ).where(Conversation.id == conv_id)
                ).one()
                assert stored == counter == counts[f"messages:{conv_id}"], conv_id
            for agent_id in plan["core_agents"]:
                sent = conn.scalar(sa.select(Agent.total_messages_sent).where(Agent.id == agent_id))
                assert sent == counts[f"sent:{agent_id}"], agent_id
        report = run_check(engine)
        assert report.ok, [str(p) for p in report.problems]
    finally:
        engine.dispose()
    figures.record(
        "two_servers_postgresql",
        {
            "seconds": round(elapsed, 2),
            "writers": len(writers),
            "operations": counts["ops"],
            "replayed_batches": counts["replays"],
            "refused_moves": counts["refused"],
            "logs": sum(v for k, v in counts.items() if k.startswith("logs:")),
        },
    )
