"""Reads while agents write: each read under live ingest beside the same read, writers paused.

    .venv/bin/python bench/live.py [--dialect sqlite|postgresql|both] [--rows 3000000]
                                   [--window 30] [--pause 10] [--writers 2] [--workers 2]
                                   [--tails 2] [--gin 'fastupdate = off']

For each dialect, on a fresh database migrated to head (a SQLite file; PostgreSQL at
127.0.0.1:5432 in a database created and dropped here), ``swarm-director serve`` (gunicorn)
runs while ``--writers`` client threads post batches of ``--batch`` logs (``POST
/api/tasks/{id}/logs``, bodies encoded up front) as fast as the server takes them, until the
table holds ``--rows`` logs. One message in ten holds the word ``timeout``; one in 50,000 the
rare word; one in each batch the *new* word, a word changed every window (so the statistics
and the index's merged entries never know it).

The run is cut into windows: ``--window`` seconds with the writers posting, then ``--pause``
seconds with the writers stopped. Throughout, one client (one kept-alive connection, one
request at a time, in a process of its own: see :class:`Reader`) loops over
:data:`REQUESTS`, the named reads, and each window reports per read the p50 and p95 latency
while ingesting beside the same read on the same table with the writers paused, and their
ratio. A read is one line in :data:`REQUESTS`. Among them, the
bare Flask endpoints of bench/api.py (a server of their own, the same gunicorn and workers):
what a request of the same size costs without our code, so that a read's ratio to them tells
the server's share from the machine's. ``--tails`` live tails (``GET /api/logs/stream``)
follow the warnings meanwhile; each window reports their delivery delay, from the batch's
POST to the event's arrival. ``--gin`` sets
storage parameters of the PostgreSQL full-text index's partitions first (the GIN pending list
measured on ingest and reads alike).

Targets (the issue): p95 while ingesting < 50 ms for searches, < 10 ms for newest-50 and the
task list, and <= 3x the same read paused. Exits 1 if a target is missed in a window with
at least ``--settle`` rows (the first windows, with a table of a few thousand rows, are
dominated by the server's own warm-up).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import HOST, SWARM_DIRECTOR, free_port, percentile, server
from bench.scale import Target
from swarm_director.models import Agent, AgentType, Task, TaskStatus, TaskType

COMMON = "timeout"
RARE = "zephyrine"
RARE_EVERY = 50_000
TASKS = 200
QUEUED = 20_000


@dataclass
class Run:
    """What the requests need: the ids made at the start, the current new word, a lease."""

    task_ids: list[int]
    agent_id: int
    new_word: str = "nova0"
    lease: dict[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(5))


@dataclass(frozen=True)
class Request:
    """A named read: how to send it, and which target its p95 has (None: only the ratio).
    ``bare``: sent to the bare Flask server (bench/api.py's baseline), not to ours."""

    name: str
    send: Callable[[Run], tuple[str, str, dict[str, Any] | None]]
    target_ms: float | None
    bare: bool = False


def _get(path: str) -> tuple[str, str, None]:
    return "GET", path, None


def _claim(run: Run) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/api/tasks/claim", {"agent_id": run.agent_id, "limit": 1}


def _complete(run: Run) -> tuple[str, str, dict[str, Any]]:
    task_id, token = run.lease["task_id"], run.lease["token"]
    return "POST", f"/api/tasks/{task_id}/complete", {"lease_token": token}


def _task(run: Run) -> int:
    return run.rng.choice(run.task_ids)


#: The reads measured, in the order the client loops over them: (name, request, p95 target).
REQUESTS = (
    Request("rare word", lambda r: _get(f"/api/logs?q={RARE}&limit=50"), 50),
    Request("common word", lambda r: _get(f"/api/logs?q={COMMON}&limit=50"), 50),
    Request("new word", lambda r: _get(f"/api/logs?q={r.new_word}&limit=50"), 50),
    Request("two words", lambda r: _get(f"/api/logs?q={COMMON}+{r.new_word}&limit=50"), 50),
    Request("task's newest 50", lambda r: _get(f"/api/tasks/{_task(r)}/logs?limit=50"), 10),
    Request("task's common word", lambda r: _get(f"/api/tasks/{_task(r)}/logs?q={COMMON}"), 50),
    Request("tasks by status", lambda r: _get("/api/tasks?status=in_progress&limit=50"), 10),
    Request("console task page", lambda r: _get(f"/ui/tasks/{_task(r)}"), None),
    Request("queue claim", _claim, None),
    Request("queue complete", _complete, None),
    Request("history", lambda r: _get("/api/history?limit=50"), None),
    # The reports of the console's overview: the last 24 hours by hour, the range ending now.
    Request("report: tasks", lambda r: _get("/api/reports/tasks"), None),
    Request("report: logs", lambda r: _get("/api/reports/logs"), None),
    Request("report: failures", lambda r: _get("/api/reports/failures"), None),
    Request("report: durations", lambda r: _get("/api/reports/durations"), None),
    # The baseline: what a request costs the server and this machine without our code.
    Request("bare Flask, 50 logs", lambda r: _get(f"/bare/{_task(r)}/logs"), None, bare=True),
    Request("bare Flask, a task", lambda r: _get(f"/bare/{_task(r)}"), None, bare=True),
)
#: Each read compared with the bare Flask request of the same size, in every window.
AGAINST_BARE = (
    ("task's newest 50", "bare Flask, 50 logs"),
    ("tasks by status", "bare Flask, 50 logs"),
)
#: The live tails' filter: the warnings (the rows with COMMON, one in ten).
TAIL_QUERY = "/api/logs/stream?level=warning"
# The send time every row of a batch carries in its metadata (see batch_bodies).
_SENT = re.compile(rb'"sent": ?([0-9.]+)')


def batch_bodies(task_count: int, batch: int, seed: int) -> list[bytes]:
    """Bodies of ``batch`` log rows, ``NEWWORD`` in one row of each (replaced when sent)."""
    rng = random.Random(seed)
    words = ["draft", "review", "email", "queued", "retry", "parsed", "agent", "reply", "sent"]
    bodies = []
    for b in range(64):
        rows = []
        for i in range(batch):
            text = " ".join(rng.choice(words) for _ in range(6))
            if rng.random() < 0.1:
                text += f" {COMMON} after {rng.randint(1, 30)} s"
            if i == 0:
                text += " NEWWORD"
            rows.append({
                "agent_type": "draft_writer", "message": f"step {b}.{i}: {text}",
                "log_level": "warning" if COMMON in text else "info",
                "session_id": f"session-{seed}-{b}", "metadata": {"step": i, "sent": "SENT"},
            })  # fmt: skip
        bodies.append(json.dumps(rows).encode())
    rare = json.loads(bodies[0])
    rare[1]["message"] += f" {RARE}"
    bodies.append(json.dumps(rare).encode())  # the last body: sent once per RARE_EVERY rows
    return bodies


class Connection:
    """One kept-alive HTTP connection, opened again after the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Writers:
    """``count`` threads posting batches while :attr:`running` is set, counting rows."""

    def __init__(self, port: int, run: Run, count: int, batch: int) -> None:
        self.port, self.run, self.batch = port, run, batch
        self.running = threading.Event()
        self.stop = threading.Event()
        self.rows = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._post, args=(i,), daemon=True) for i in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _post(self, index: int) -> None:
        bodies = batch_bodies(len(self.run.task_ids), self.batch, index)
        conn = Connection(self.port)
        rng = random.Random(index)
        rare_every = max(1, RARE_EVERY // self.batch)
        sent = 0
        while not self.stop.is_set():
            if not self.running.wait(0.2):
                continue
            body = bodies[-1] if sent % rare_every == rare_every // 2 else bodies[sent % 64]
            body = body.replace(b"NEWWORD", self.run.new_word.encode())
            body = body.replace(b'"SENT"', repr(time.time()).encode())
            task_id = rng.choice(self.run.task_ids)
            status, answer = conn.send("POST", f"/api/tasks/{task_id}/logs", body)
            sent += 1
            if status != 201:
                self.errors.append(f"HTTP {status} {answer[:200]!r}")
                self.stop.set()
                return
            with self.lock:
                self.rows += self.batch

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


class Tails:
    """``count`` live tails of :data:`TAIL_QUERY` (``GET /api/logs/stream``, Server-Sent
    Events, resumed with ``Last-Event-ID`` as the client's ``follow_logs`` does), each
    recording every record's delivery: (when received, received minus when its batch was
    sent), wall-clock seconds."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.deliveries: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._follow, daemon=True) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _follow(self) -> None:
        last_id: str | None = None
        while not self.stop.is_set():
            conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            try:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                conn.request("GET", TAIL_QUERY, headers=headers)
                response = conn.getresponse()
                if response.status != 200:
                    self.errors.append(f"tail: HTTP {response.status} {response.read()[:200]!r}")
                    return
                while not self.stop.is_set():
                    line = response.readline()
                    if not line:
                        break  # the server ended the stream: resume after the last event
                    if line.startswith(b"id:"):
                        last_id = line[3:].strip().decode()
                    elif line.startswith(b"data:"):
                        now = time.time()
                        self.deliveries += [(now, now - float(t)) for t in _SENT.findall(line)]
            except (http.client.HTTPException, OSError) as error:
                if not self.stop.is_set():
                    self.errors.append(f"tail: {error!r}")
                    time.sleep(0.5)
            finally:
                conn.close()

    def delays(self, start: float, end: float) -> list[float]:
        """Delivery delays (s) of the records received between ``start`` and ``end``."""
        return [delay for received, delay in list(self.deliveries) if start <= received < end]

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=35)


def measure(port: int, bare_port: int, run: Run, seconds: float) -> dict[str, list[float]]:
    """Latencies (s) of every request of REQUESTS, looping over them for ``seconds``."""
    conn, bare = Connection(port), Connection(bare_port)
    times: dict[str, list[float]] = {r.name: [] for r in REQUESTS}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for request in REQUESTS:
            if request.name == "queue complete" and not run.lease:
                continue
            method, path, body = request.send(run)
            data = None if body is None else json.dumps(body).encode()
            start = time.perf_counter()
            status, answer = (bare if request.bare else conn).send(method, path, data)
            times[request.name].append(time.perf_counter() - start)
            if status != 200:
                raise SystemExit(f"{request.name}: HTTP {status} {answer[:300]!r}")
            if request.send is _claim:
                claims = json.loads(answer)["claims"]
                run.lease = (
                    {"task_id": claims[0]["task"]["id"], "token": claims[0]["lease_token"]}
                    if claims
                    else {}
                )
            elif request.send is _complete:
                run.lease = {}
    return times


class Reader:
    """The reading client in a process of its own, forked before the writers' and tails'
    threads start: its latencies then include no wait for this process's GIL, which the
    tails' parsing of thousands of events a second holds (a reading client is not the
    writing agents' process either). Each :meth:`measure` runs :func:`measure` there."""

    def __init__(self, port: int, bare_port: int, run: Run) -> None:
        self.run = run
        self.pipe, child = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        self.process = context.Process(
            target=self._serve, args=(child, port, bare_port, run), daemon=True
        )
        self.process.start()

    @staticmethod
    def _serve(pipe: Any, port: int, bare_port: int, run: Run) -> None:
        while True:
            order = pipe.recv()
            if order is None:
                return
            seconds, run.new_word = order
            pipe.send(measure(port, bare_port, run, seconds))

    def measure(self, seconds: float) -> dict[str, list[float]]:
        self.pipe.send((seconds, self.run.new_word))
        times: dict[str, list[float]] = self.pipe.recv()
        return times

    def close(self) -> None:
        self.pipe.send(None)
        self.process.join(timeout=30)


def _p(values: list[float], q: float) -> float:
    return (statistics.median(values) if q == 0.5 else percentile(values, q)) * 1000


def report(
    window: int, rows: int, added: int, rate: float, busy: dict[str, list[float]],
    idle: dict[str, list[float]], tails: list[float], settled: bool,
) -> list[str]:  # fmt: skip
    """Prints the window's table; returns the targets it missed (when ``settled``)."""
    print(
        f"window {window}: {rows:,} logs (+{added:,}, {rate:,.0f} rows/s while writing), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'request':20} {'ingesting p50/p95 ms':>22} {'paused p50/p95 ms':>20} "
          f"{'p95 ratio':>9}  n")  # fmt: skip
    missed = []
    for request in REQUESTS:
        a, b = busy[request.name], idle[request.name]
        if not a or not b:
            continue
        ratio = _p(a, 0.95) / _p(b, 0.95)
        flags = []
        if request.target_ms is not None and _p(a, 0.95) >= request.target_ms:
            flags.append(f"p95 >= {request.target_ms:.0f} ms")
        if request.target_ms is not None and ratio > 3:
            flags.append("ratio > 3")
        if flags and settled:
            missed.append(f"window {window} {request.name}: {', '.join(flags)}")
        print(
            f"  {request.name:20} {_p(a, 0.5):>10.1f} / {_p(a, 0.95):<9.1f} "
            f"{_p(b, 0.5):>8.1f} / {_p(b, 0.95):<9.1f} {ratio:>8.1f}x  {len(a)}/{len(b)}"
            + (f"  MISSED: {', '.join(flags)}" if flags else "")
        )
    for name, baseline in AGAINST_BARE:
        a, b = busy[name], busy[baseline]
        c, d = idle[name], idle[baseline]
        if a and b and c and d:
            print(
                f"  {name} / {baseline}: p50 {_p(a, 0.5) / _p(b, 0.5):.1f}x, "
                f"p95 {_p(a, 0.95) / _p(b, 0.95):.1f}x ingesting; "
                f"p50 {_p(c, 0.5) / _p(d, 0.5):.1f}x, p95 {_p(c, 0.95) / _p(d, 0.95):.1f}x paused"
            )
    if tails:
        print(
            f"  live tails ({TAIL_QUERY}), write to event received while ingesting: "
            f"p50 {_p(tails, 0.5):.0f} ms, p95 {_p(tails, 0.95):.0f} ms, max "
            f"{max(tails) * 1000:.0f} ms, {len(tails):,} records"
        )
    return missed


def prepare(target: Target) -> Run:
    """The tasks the logs go to (a mix of statuses), an agent and a queue of due tasks."""
    statuses = [TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED]
    with target.database.transaction() as session:
        agent = Agent(name="live-bench-worker", agent_type=AgentType.WORKER)
        tasks = [
            Task(type=TaskType.ANALYSIS, title=f"live task {i}", status=statuses[i % 3])
            for i in range(TASKS)
        ]
        session.add(agent)
        session.add_all(tasks)
        session.flush()
        run = Run([t.id for t in tasks], agent.id)
    # The claim's queue: inserted raw (the bench measures the claim, not the queue's filling).
    with target.database.engine.begin() as conn:
        conn.execute(
            Task.__table__.insert(),
            [{"type": "email_draft", "title": f"queued {i}", "status": "pending",
              "priority": "medium", "user_id": None} for i in range(QUEUED)],
        )  # fmt: skip
    if target.dialect == "postgresql":
        target.autocommit("VACUUM ANALYZE tasks")
    return run


def set_gin_storage(target: Target, storage: str) -> None:
    """``ALTER INDEX ... SET (storage)`` on every partition's full-text index of agent_logs
    (a partitioned index takes no storage parameters of its own)."""
    with target.database.engine.begin() as conn:
        names = conn.exec_driver_sql(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'ix_agent_logs_fts'::regclass"
        ).scalars()
        for name in list(names):
            conn.exec_driver_sql(f"ALTER INDEX {name} SET ({storage})")
    print(f"   agent_logs' GIN indexes: {storage}")


def bench(dialect: str, args: argparse.Namespace, work: Path) -> list[str]:
    print(f"== {dialect}: to {args.rows:,} logs, {args.writers} writers x {args.batch} rows, "
          f"{args.window:.0f} s windows + {args.pause:.0f} s paused")  # fmt: skip
    target = Target(dialect, work)
    missed: list[str] = []
    try:
        if args.gin and dialect == "postgresql":
            set_gin_storage(target, args.gin)
        run = prepare(target)
        url = target.url.render_as_string(hide_password=False)
        port, bare_port = free_port(), free_port()
        command = [*SWARM_DIRECTOR, "serve", "--database-url", url, "--port", str(port),
                   "--workers", str(args.workers)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "SWARM_API_TOKEN"}
        bare_command = [sys.executable, str(Path(__file__).with_name("api.py")), "--serve-bare",
                        str(bare_port), "--workers", str(args.workers)]  # fmt: skip
        with server(command, port, env), server(bare_command, bare_port, env):
            reader = Reader(port, bare_port, run)
            writers = Writers(port, run, args.writers, args.batch)
            tails = Tails(port, args.tails)
            try:
                reader.measure(3)  # warm-up: every worker's first requests
                window = 0
                while writers.rows < args.rows:
                    window += 1
                    run.new_word = f"nova{window}"
                    before, start, wall = writers.rows, time.monotonic(), time.time()
                    writers.running.set()
                    busy = reader.measure(args.window)
                    writers.running.clear()
                    elapsed = time.monotonic() - start
                    time.sleep(0.5)  # the batches in flight land
                    if writers.errors or tails.errors:
                        raise SystemExit(f"failed: {(writers.errors + tails.errors)[0]}")
                    added = writers.rows - before
                    delays = tails.delays(wall, time.time())
                    idle = reader.measure(args.pause)
                    missed += report(window, writers.rows, added, added / elapsed, busy, idle,
                                     delays, writers.rows - added >= args.settle)  # fmt: skip
            finally:
                reader.close()
                writers.close()
                tails.close()
    finally:
        target.close()
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=3_000_000, help="logs to reach")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of writing")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds with writers paused")
    parser.add_argument("--writers", type=int, default=2, help="posting client threads")
    parser.add_argument("--batch", type=int, default=200, help="rows per POST")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--tails", type=int, default=2, help="live tails (log streams)")
    parser.add_argument(
        "--settle",
        type=int,
        default=100_000,
        help="targets count from windows after this many logs",
    )
    parser.add_argument(
        "--gin", metavar="PARAMS", help="PostgreSQL: e.g. 'fastupdate = off' on the GIN indexes"
    )
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    work = Path(tempfile.mkdtemp(prefix="sd-bench-live-"))
    missed: list[str] = []
    try:
        for dialect in dialects:
            missed += [f"{dialect}: {m}" for m in bench(dialect, args, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for line in missed:
        print(f"missed: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
