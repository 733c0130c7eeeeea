"""Contention: several writer and reader processes on one database, on SQLite and PostgreSQL.

Writers mix bulk log ingest, read-then-write transactions (task status moves read under a row
lock, draft versions, messages that bump counters, participants joining and leaving) and
readers run list queries, all at once for a fixed time. Passing means:

* no caller ever saw a "database is locked", a deadlock or a serialization failure — only the
  documented refusals (e.g. 409 for adding an agent that is already a participant);
* nothing was lost: log counts, draft versions (1..n without gaps), message counters and the
  agents' sent counters equal what the workers report having committed; every task's status
  history replays as a chain of legal moves; ``db check`` is clean;
* p50/p99 latency per operation are reported (printed and saved with the figures).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.db import Database, make_engine
from swarm_director.models import Agent, AgentLog, Conversation, Draft, Message, Task
from swarm_director.ops.checks.db_check import run_check
from swarm_director.store import agents, conversations, tasks
from tests.reliability.conftest import Figures, Scale, url_text
from tests.reliability.procs import worker_context
from tests.reliability.workers import contention_reader, contention_writer

TASKS = 6
CONVERSATIONS = 2
BATCH = 50


def _setup(url: URL) -> dict[str, Any]:
    db = Database(make_engine(url))
    try:
        with db.transaction() as session:
            task_ids = [
                tasks.create_task(session, {"type": "analysis", "title": f"t{i}"}).id
                for i in range(TASKS)
            ]
            core = [
                agents.create_agent(session, {"name": f"core{i}", "agent_type": "worker"}).id
                for i in range(2)
            ]
            churn = [
                agents.create_agent(session, {"name": f"churn{i}", "agent_type": "worker"}).id
                for i in range(3)
            ]
            conv_ids = []
            for i in range(CONVERSATIONS):
                conv = conversations.create_conversation(session, {"title": f"c{i}"})
                for agent in core:
                    conversations.add_participant(session, conv.id, agent)
                conv_ids.append(conv.id)
    finally:
        db.dispose()
    return {
        "tasks": task_ids,
        "conversations": conv_ids,
        "core_agents": core,
        "churn_agents": churn,
        "batch": BATCH,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    for result in results:
        for op, values in result["latencies"].items():
            latencies.setdefault(op, []).extend(values)
    per_op = {
        op: {
            "count": len(values),
            "ops_per_s": round(len(values) / seconds, 1),
            "p50_ms": round(statistics.median(values) * 1000, 2),
            "p99_ms": round(_percentile(values, 0.99) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2),
        }
        for op, values in sorted(latencies.items())
    }
    total = sum(len(v) for v in latencies.values())
    return {"operations": total, "ops_per_s": round(total / seconds, 1), "per_operation": per_op}


def _replay_moves(conn: sa.Connection, task_id: int) -> tuple[int, str]:
    moves = conn.execute(
        sa.select(AgentLog.message)
        .where(AgentLog.task_id == task_id, AgentLog.session_id == "status")
        .order_by(AgentLog.id)
    ).scalars()
    state = "pending"
    count = 0
    for move in moves:
        before, after = move.split("->")
        assert before == state, f"task {task_id}: move {move} after state {state} (lost update)"
        state = after
        count += 1
    return count, state


def test_writers_and_readers_lose_nothing(
    migrated_url: URL, dialect: str, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    plan = _setup(migrated_url)
    url = url_text(migrated_url)
    ctx = worker_context()
    seconds = scale.contention_seconds
    outputs: list[Path] = []
    procs = []
    for wid in range(scale.contention_writers):
        out = tmp_path / f"writer{wid}.json"
        procs.append(
            ctx.Process(target=contention_writer, args=(url, wid, seconds, plan, str(out)))
        )
        outputs.append(out)
    for rid in range(scale.contention_readers):
        out = tmp_path / f"reader{rid}.json"
        procs.append(
            ctx.Process(target=contention_reader, args=(url, rid, seconds, plan, str(out)))
        )
        outputs.append(out)
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=seconds + 120)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)
        assert proc.exitcode == 0, f"worker exited with {proc.exitcode}"
    results = [json.loads(path.read_text()) for path in outputs]

    errors = [e for r in results for e in r["errors"]]
    assert not errors, "errors reached a caller:\n" + "\n".join(errors[:10])

    counts: Counter[str] = Counter()
    for result in results:
        counts.update(result["counts"])
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            for task_id in plan["tasks"]:
                ingested = conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(AgentLog)
                    .where(AgentLog.task_id == task_id, AgentLog.session_id == "ingest")
                )
                assert ingested == counts[f"logs:{task_id}"], f"logs of task {task_id} lost"
                versions = list(
                    conn.scalars(
                        sa.select(Draft.version)
                        .where(Draft.task_id == task_id)
                        .order_by(Draft.version)
                    )
                )
                assert versions == list(range(1, counts[f"drafts:{task_id}"] + 1)), (
                    f"draft versions of task {task_id}"
                )
                moves, state = _replay_moves(conn, task_id)
                assert moves == counts[f"moves:{task_id}"], f"status moves of task {task_id}"
                status = conn.scalar(sa.select(Task.status).where(Task.id == task_id))
                assert status is not None and status.value == state
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
                assert stored == counter == counts[f"messages:{conv_id}"], f"messages of {conv_id}"
            for agent_id in plan["core_agents"] + plan["churn_agents"]:
                sent = conn.scalar(sa.select(Agent.total_messages_sent).where(Agent.id == agent_id))
                assert sent == counts[f"sent:{agent_id}"], f"messages sent by agent {agent_id}"
        report = run_check(engine)
        assert report.ok, [str(p) for p in report.problems]
        rows = sum(int(conn_count) for conn_count in _row_counts(engine).values())
    finally:
        engine.dispose()

    refused: Counter[str] = Counter()
    for result in results:
        refused.update(result["refused"])
    summary = _summary(results, seconds)
    summary.update(
        writers=scale.contention_writers,
        readers=scale.contention_readers,
        seconds=seconds,
        rows_checked=rows,
        refusals=dict(refused),
    )
    figures.record(f"contention_{dialect}", summary)


def _row_counts(engine: sa.Engine) -> dict[str, int]:
    from swarm_director.ops.dbinfo import row_counts

    with engine.connect() as conn:
        return row_counts(conn)
