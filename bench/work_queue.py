"""The work queue and the history: each figure beside its baseline, measured in the same run.

    .venv/bin/python bench/work_queue.py [--dialect sqlite|postgresql|both] [--tasks 20000]
                                    [--cycles 2000] [--samples 200] [--quick]

For each dialect, on a fresh database migrated to head (a SQLite file; PostgreSQL at
127.0.0.1:5432 in a database created and dropped here):

1. Claim + complete in process (``store.queue.claim_tasks`` then ``complete_task``, a Core
   transaction each (``Database.writes``), as the API runs them) by 1 and by 4 worker
   *processes*, each its own agent, against the same statements written by hand on a raw
   driver connection (sqlite3 / psycopg): the agent's ``last_seen_at`` (``RETURNING`` its id:
   the agent check), the expiry sweep, the per-priority select (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL), the update with ``RETURNING``, the history insert; then the locked read, the
   update and the history insert of the completion. Alternating rounds, medians. Target:
   store / raw >= 0.7.
2. ``--tasks`` queued tasks burned down by 4 HTTP worker processes against ``swarm-director
   serve`` (claim + complete per task over one kept-alive connection each): tasks/s, beside
   the same number of request pairs against a bare Flask endpoint pair served the same way
   (``run_gunicorn``, same workers), before and after.
3. A waiting worker's delay from a task's creation to its claim: a thread of this process
   claims over HTTP with ``wait_s``; this process (another process than the server) creates the
   task through the store; the delay runs from the start of the creating transaction to the
   claim's answer. Baseline: the same task created and then claimed at once without waiting.
   Target: median < 20 ms. Then what an idle waiting worker costs the database: the API's
   wait loop (``wait_for`` with a ``ReadySignal``) run in process with nothing to claim,
   statements counted with SQLAlchemy's ``before_cursor_execute``; on PostgreSQL also the
   transactions the server counted (``pg_stat_database``) beside the same window without it.
4. ``store.tasks.update_task`` (a title change, a transaction each) with the history hook
   against the same updates with the hook removed (``sqlalchemy.event.remove``), in
   alternating blocks of 50, totals. Target: <= 1.3x.

Prints each figure, its baseline and the ratio; exits 1 if a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on the path, for ``bench.work_queue_raw``. (The file
# is not called queue.py: bench/ is on the path of every bench script, and gunicorn and
# multiprocessing import the standard library's ``queue``.)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bench.api import SWARM_DIRECTOR, free_port, percentile, server
from bench.scale import Target
from bench.work_queue_raw import ACTOR, RESULT, Raw
from swarm_director.db import Database, make_engine
from swarm_director.db.actor import acting_as
from swarm_director.models import HistoryEntry, Task, TaskType, recording
from swarm_director.store import agents, queue, tasks
from swarm_director.store.queue_wait import ReadySignal, wait_for

HOST = "127.0.0.1"

# -- worker processes (1) and (2) ----------------------------------------------------------


def store_cycle(db: Database, agent_id: int) -> None:
    with db.writes() as unit:
        claims = queue.claim_tasks(unit, agent_id, lease_s=60)
    assert claims, "the queue ran dry"
    with db.writes() as unit:
        queue.complete_task(unit, claims[0].task.id, claims[0].lease_token, result=RESULT)


def _post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> Any:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: HTTP {response.status} {data[:200]!r}")
    return json.loads(data)


def http_burn(port: int, agent_id: int, bare: int | None) -> int:
    """Claim + complete over one kept-alive connection until the queue is empty (or ``bare``
    pairs against the bare endpoints); returns the tasks done."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    done = 0
    try:
        while bare is None or done < bare:
            prefix = "/bare" if bare is not None else "/api/tasks"
            claims = _post(conn, f"{prefix}/claim", {"agent_id": agent_id, "lease_s": 60})
            if not claims["claims"]:
                break
            claim = claims["claims"][0]
            body = {"lease_token": claim["lease_token"], "result": RESULT}
            _post(conn, f"{prefix}/{claim['task']['id']}/complete", body)
            done += 1
    finally:
        conn.close()
    return done


def worker_main(dialect: str, url: str, agent_id: int, pipe: Any) -> None:
    """A worker process: runs the commands it is sent, each starting at the same moment as
    its peers', and answers (start, end, count) on the shared monotonic clock."""
    db = Database(make_engine(url))
    raw = Raw(dialect, url)
    try:
        with acting_as(ACTOR):
            while (command := pipe.recv()) is not None:
                kind, count, go_at = command
                time.sleep(max(0.0, go_at - time.monotonic()))
                start = time.monotonic()
                if kind == "store":
                    for _ in range(count):
                        store_cycle(db, agent_id)
                elif kind == "raw":
                    for _ in range(count):
                        raw.cycle(agent_id)
                else:
                    port, bare = count
                    count = http_burn(port, agent_id, bare if kind == "bare" else None)
                pipe.send((start, time.monotonic(), count))
    except BaseException as error:
        pipe.send(error)
        raise
    finally:
        raw.conn.close()
        db.dispose()


class Workers:
    """Worker processes (spawned: nothing of this process's pools is shared), one agent each."""

    def __init__(self, target: Target, agent_ids: list[int]) -> None:
        ctx = mp.get_context("spawn")
        url = target.url.render_as_string(hide_password=False)
        self.pipes = []
        self.procs = []
        for agent_id in agent_ids:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(target.dialect, url, agent_id, theirs))
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def run(self, kind: str, counts: list[Any]) -> tuple[float, int]:
        """Seconds from the first start to the last end, and the total count."""
        go_at = time.monotonic() + 0.3
        for pipe, count in zip(self.pipes, counts, strict=False):
            pipe.send((kind, count, go_at))
        answers = [pipe.recv() for pipe in self.pipes[: len(counts)]]
        for answer in answers:
            if isinstance(answer, BaseException):
                raise SystemExit(f"a worker failed: {answer!r}")
        return max(a[1] for a in answers) - min(a[0] for a in answers), sum(a[2] for a in answers)

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for proc in self.procs:
            proc.join(timeout=30)


# -- the measurements ------------------------------------------------------------------------


def add_tasks(db: Database, count: int) -> list[int]:
    ids: list[int] = []
    for base in range(0, count, 5000):
        with db.transaction() as session:
            batch = [
                Task(type=TaskType.ANALYSIS, title=f"queued task {base + i}")
                for i in range(min(5000, count - base))
            ]
            session.add_all(batch)
            session.flush()
            ids += [task.id for task in batch]
    return ids


def statement_counts(target: Target, agent_id: int) -> None:
    """(1)'s statements: one claim + complete of each side in this process, counted (the
    store's by SQLAlchemy's cursor events, which its prepared statements fire too; the raw
    side's by sqlite3's trace callback or a counting psycopg cursor), BEGIN and COMMIT apart,
    and triggers apart (sqlite3's trace reports them too)."""
    add_tasks(target.database, 2)
    store: list[str] = []
    raw_seen: list[str] = []

    def note(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        store.append(statement)

    event.listen(target.database.engine, "before_cursor_execute", note)
    try:
        with acting_as(ACTOR):
            store_cycle(target.database, agent_id)
    finally:
        event.remove(target.database.engine, "before_cursor_execute", note)
    raw = Raw(target.dialect, target.url.render_as_string(hide_password=False))
    try:
        if target.dialect == "sqlite":
            raw.conn.set_trace_callback(raw_seen.append)
        else:
            import psycopg

            class Counting(psycopg.Cursor[Any]):
                def execute(self, query: Any, *args: Any, **kw: Any) -> Any:
                    raw_seen.append(str(query))
                    return super().execute(query, *args, **kw)

            raw.conn.cursor_factory = Counting
        raw.cycle(agent_id)
    finally:
        raw.conn.close()

    if target.dialect == "sqlite":
        # sqlite3's trace also reports each trigger program a statement runs (the rollups'
        # upkeep on history inserts, for both sides) under the text, values filled in, of
        # the statement that fired it: an immediate repeat of that text is not a statement.
        raw_seen = [s for i, s in enumerate(raw_seen) if i == 0 or s != raw_seen[i - 1]]

    def work(statements: list[str]) -> int:
        return sum(not s.upper().startswith(("BEGIN", "COMMIT")) for s in statements)

    print(
        f"(1) statements a task (claim + complete, BEGIN and COMMIT apart): store "
        f"{work(store)}, raw driver {work(raw_seen)}; transactions: 2 each"
    )


def claim_complete(target: Target, workers: Workers, cycles: int, rounds: int) -> bool:
    """(1): returns whether every ratio met its target."""
    met = True
    n = len(workers.pipes)
    for count in (1, n):
        per = [cycles // count] * count
        add_tasks(target.database, (sum(per) * rounds + 10 * count) * 2)
        workers.run("store", [10] * count)  # warm-up: connections, statement caches
        workers.run("raw", [10] * count)
        rates: dict[str, list[float]] = {"store": [], "raw": []}
        for r in range(rounds):
            for kind in ("store", "raw") if r % 2 == 0 else ("raw", "store"):
                seconds, done = workers.run(kind, per)
                rates[kind].append(done / seconds)
        store, raw = statistics.median(rates["store"]), statistics.median(rates["raw"])
        met &= store / raw >= 0.7
        print(
            f"(1) claim + complete in process, {count} worker process{'es' if count > 1 else ''}"
            f": store {store:,.0f}/s, raw driver {raw:,.0f}/s -> {store / raw:.2f} "
            f"(target >= 0.7; {sum(per):,} tasks a round, {rounds} rounds)"
        )
    return met


def serve_bare(port: int, workers: int) -> None:
    """A bare Flask app with the two endpoints a worker calls, answering payloads shaped like
    the API's (a claim with its task, a completed task), served like the API."""
    from flask import Flask, jsonify, request

    from swarm_director.cli.serve import run_gunicorn

    def task(task_id: int) -> dict[str, Any]:
        stamp = "2026-12-06T00:00:00.000000Z"
        return {
            "id": task_id, "type": "analysis", "user_id": None, "status": "in_progress",
            "title": f"queued task {task_id}", "description": None, "priority": "medium",
            "assigned_agent_id": 1, "parent_task_id": None, "conversation_id": None,
            "completed_at": None, "attempts": 1, "max_attempts": 3, "not_before": None,
            "claimed_at": stamp, "lease_expires_at": stamp, "last_error": None,
            "result": RESULT, "created_at": stamp, "updated_at": stamp,
        }  # fmt: skip

    def make() -> Any:
        app = Flask("bare")
        counter = iter(range(1, 10**9))

        @app.post("/bare/claim")
        def claim() -> Any:
            request.get_json()
            token = "x" * 32
            out = {"task": task(next(counter)), "lease_token": token, "lease_expires_at": "z"}
            return jsonify(claims=[out])

        @app.post("/bare/<int:task_id>/complete")
        def complete(task_id: int) -> Any:
            request.get_json()
            return jsonify(task(task_id))

        return app

    run_gunicorn(make, host=HOST, port=port, workers=workers)


def burn_down(workers: Workers, port: int, bare_port: int, tasks_n: int) -> None:
    """(2)"""
    n = len(workers.pipes)
    bare = [(bare_port, tasks_n // n)] * n
    before_s, before_n = workers.run("bare", bare)
    seconds, done = workers.run("api", [(port, None)] * n)
    after_s, after_n = workers.run("bare", bare)
    rate, bare_rate = done / seconds, (before_n + after_n) / (before_s + after_s)
    print(
        f"(2) {done:,} queued tasks burned down by {n} HTTP worker processes (claim + complete "
        f"each): {rate:,.0f} tasks/s in {seconds:.1f} s; the same request pairs against a bare "
        f"Flask endpoint pair: {before_n / before_s:,.0f} and {after_n / after_s:,.0f} pairs/s "
        f"(before, after) -> {rate / bare_rate:.2f} of the bare rate"
    )


def wake_delay(db: Database, port: int, agent_id: int, samples: int) -> bool:
    """(3), the delay: returns whether the median met its target."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    rng = random.Random(5)
    waited: list[float] = []
    direct: list[float] = []
    with acting_as("bench-creator"):
        for i in range(samples + 5):  # the first 5 warm up
            answer: dict[str, Any] = {}

            def claim() -> None:
                body = {"agent_id": agent_id, "lease_s": 3600, "wait_s": 10}
                answer["claims"] = _post(conn, "/api/tasks/claim", body)["claims"]  # noqa: B023
                answer["at"] = time.perf_counter()  # noqa: B023

            waiter = threading.Thread(target=claim)
            waiter.start()
            time.sleep(rng.uniform(0.05, 0.1))  # the claim is waiting by now
            start = time.perf_counter()
            with db.transaction() as session:
                task_id = tasks.create_task(session, {"type": "analysis", "title": "w"}).id
            waiter.join()
            assert [c["task"]["id"] for c in answer["claims"]] == [task_id], answer
            start_direct = time.perf_counter()
            with db.transaction() as session:
                direct_id = tasks.create_task(session, {"type": "analysis", "title": "d"}).id
            got = _post(conn, "/api/tasks/claim", {"agent_id": agent_id, "lease_s": 3600})
            assert [c["task"]["id"] for c in got["claims"]] == [direct_id]
            if i >= 5:
                waited.append(answer["at"] - start)
                direct.append(time.perf_counter() - start_direct)
    conn.close()
    median = statistics.median(waited)
    print(
        f"(3) creation -> claim of a waiting worker (HTTP, wait_s=10), {samples} tasks: median "
        f"{median * 1000:.1f} ms, p95 {percentile(waited, 0.95) * 1000:.1f} ms (target median "
        f"< 20 ms); baseline, created then claimed at once: median "
        f"{statistics.median(direct) * 1000:.1f} ms, p95 {percentile(direct, 0.95) * 1000:.1f} ms"
    )
    return median < 0.020


def _server_xacts(target: Target) -> int:
    """Transactions PostgreSQL counted in this database (after a wait for idle backends to
    report theirs: they flush at most once a second)."""
    time.sleep(1.5)
    with target.database.engine.connect() as conn:
        sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s"
        return int(conn.exec_driver_sql(sql, (target.url.database,)).scalar_one())


def idle_cost(target: Target, agent_id: int, window: float) -> None:
    """(3), the cost of an idle waiter: the API's wait loop with nothing to claim."""
    db = target.database
    counted = {"all": 0, "data_version": 0, "first": 0}

    @event.listens_for(db.engine, "before_cursor_execute")
    def count(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        counted["all"] += 1
        counted["data_version"] += statement == "PRAGMA data_version"

    signal = ReadySignal(db.engine)

    marks: list[float] = []

    def attempt() -> list[queue.Claim] | None:
        with db.writes() as unit:
            found = queue.claim_tasks(unit, agent_id, lease_s=60) or None
        if not marks:  # the first look, the claim's own: count what the waiting costs
            marks.append(time.monotonic())
            counted.update(first=counted["all"], all=0, data_version=0)
        return found

    def ready() -> bool:
        with db.statement_reads() as reads:
            return queue.has_ready_task(reads, agent_id)

    pg = target.dialect == "postgresql"
    try:
        quiet = 0.0
        if pg:  # the same window without a waiter
            first = _server_xacts(target)
            time.sleep(window)
            quiet = (_server_xacts(target) - first - 1) / window
            before = _server_xacts(target)
        counted.update(all=0, data_version=0)
        started = time.monotonic()
        assert wait_for(signal, attempt, ready, window) is None
        ended = time.monotonic()
        elapsed = ended - marks[0]
        statements = counted["all"]
        polls = counted["data_version"]
    finally:
        signal.close()
        event.remove(db.engine, "before_cursor_execute", count)
    line = (
        f"(3) an idle waiting worker, {ended - started:.0f} s (the API's wait loop in process, "
        f"statements counted by SQLAlchemy events): the claim's first look "
        f"{counted['first']} statements, then {(statements - polls) / elapsed:.1f} statements/s"
    )
    if polls:
        line += f" + {polls / elapsed:.0f} PRAGMA data_version reads/s (the file watcher)"
    if pg:
        server = (_server_xacts(target) - before - 1) / (ended - started)
        line += (
            f"; PostgreSQL counted {server:.1f} transactions/s in the database, first look "
            f"included (without a waiter: {quiet:.1f}/s)"
        )
    print(line)


#: Sizes: (default, --quick).
SIZES = {
    "tasks": (20_000, 1000),
    "cycles": (2000, 200),
    "rounds": (3, 2),
    "samples": (200, 20),
    "idle_s": (10.0, 3.0),
    "updates": (5000, 500),
}
#: Updates per block in (4): blocks with and without the hook alternate, so that a change in
#: the machine's load falls on both sides alike.
BLOCK = 50


def updates_with_history(db: Database, count: int) -> bool:
    """(4): ``count`` updates each way; returns whether the ratio met its target."""
    ids = add_tasks(db, 100)
    hook = recording._record_flush  # the hook is what is measured

    def block(label: str, first: int) -> float:
        start = time.perf_counter()
        for i in range(first, first + BLOCK):
            with db.transaction() as session:
                tasks.update_task(session, ids[i % len(ids)], {"title": f"{label} {i}"})
        return time.perf_counter() - start

    def history_rows() -> int:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(HistoryEntry)) or 0)

    spent = {"with": 0.0, "without": 0.0}
    with acting_as(ACTOR):
        block("warm-up", 0)
        rows = history_rows()
        for n in range(0, count, BLOCK):
            for label in ("with", "without") if n % (2 * BLOCK) else ("without", "with"):
                if label == "with":
                    spent[label] += block(label, n)
                    continue
                event.remove(Session, "after_flush", hook)
                try:
                    spent[label] += block(label, n)
                finally:
                    event.listen(Session, "after_flush", hook)
        blocks = -(-count // BLOCK)
        assert history_rows() - rows == blocks * BLOCK, "the hook recorded too much or too little"
    done = blocks * BLOCK
    with_h, without = spent["with"] / done, spent["without"] / done
    ratio = with_h / without
    print(
        f"(4) update_task (title), a transaction each: with history {with_h * 1e3:.2f} ms, "
        f"without the hook {without * 1e3:.2f} ms -> {ratio:.2f}x (target <= 1.3x; "
        f"{done:,} updates each way in alternating blocks of {BLOCK})"
    )
    return ratio <= 1.3


def run(dialect: str, args: argparse.Namespace, work: Path) -> bool:
    print(f"== {dialect}; load average {os.getloadavg()[0]:.1f}")
    target = Target(dialect, work)
    met = True
    workers: Workers | None = None
    try:
        with target.database.transaction() as session:
            agent_ids = [
                agents.create_agent(session, {"name": f"worker-{i}", "agent_type": "worker"}).id
                for i in range(args.workers + 1)
            ]
        workers = Workers(target, agent_ids[: args.workers])
        statement_counts(target, agent_ids[-1])
        met &= claim_complete(target, workers, args.cycles, args.rounds)
        print(f"    load average {os.getloadavg()[0]:.1f}")

        add_tasks(target.database, args.tasks)
        url = target.url.render_as_string(hide_password=False)
        port, bare_port = free_port(), free_port()
        api = [*SWARM_DIRECTOR, "serve", "--database-url", url, "--port", str(port),
               "--workers", str(args.server_workers)]  # fmt: skip
        bare = [sys.executable, __file__, "--serve-bare", str(bare_port),
                "--server-workers", str(args.server_workers)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "SWARM_API_TOKEN"}
        with server(api, port, env):
            with server(bare, bare_port, env):
                burn_down(workers, port, bare_port, args.tasks)
            print(f"    load average {os.getloadavg()[0]:.1f}")
            met &= wake_delay(target.database, port, agent_ids[-1], args.samples)
        idle_cost(target, agent_ids[-1], args.idle_s)
        met &= updates_with_history(target.database, args.updates)
    finally:
        if workers is not None:
            workers.close()
        target.close()
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tasks", type=int, help="tasks burned down in (2): 20,000")
    parser.add_argument("--cycles", type=int, help="claims + completions a round (1): 2,000")
    parser.add_argument("--rounds", type=int, help="rounds of (1), each side: 3")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--samples", type=int, help="waited-for tasks in (3): 200")
    parser.add_argument("--idle-s", type=float, help="idle waiter's seconds in (3): 10")
    parser.add_argument("--updates", type=int, help="update_task calls each way in (4): 5,000")
    parser.add_argument("--server-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare, args.server_workers)
        return 0
    for name, (full, quick) in SIZES.items():  # --quick: small sizes, unless given
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    work = Path(tempfile.mkdtemp(prefix="sd-bench-queue-"))
    met = True
    try:
        for dialect in dialects:
            met &= run(dialect, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
