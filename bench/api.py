"""The REST API under the real server, against in-process and bare-Flask baselines, in one run.

    .venv/bin/python bench/api.py [--logs 1000000] [--workers 2] [--database-url URL]

Starts ``swarm-director serve`` (gunicorn) on a fresh, migrated database (a temporary SQLite
file unless ``--database-url`` names an empty PostgreSQL database) and measures:

1. Batch log ingest over HTTP, 1,000 rows per POST, against the store's own bulk rate
   (``store.logs.add_logs`` in this process, same rows, same batch size, a transaction per
   batch), alternating the two for ``--rounds`` rounds. Target: HTTP ≥ 30 % of the store.
2. Newest 50 logs of a task (``GET /api/tasks/{id}/logs?limit=50``) with ``--logs`` rows in
   the table (filled with raw ``executemany``): median and p99 latency per request, including
   the TCP connect (this script opens a connection per request). Target: median < 5 ms.
3. Requests/s of ``GET /api/tasks/{id}`` against a bare Flask JSON endpoint returning a
   payload of the same size, served the same way (gunicorn via the same ``run_gunicorn``,
   same workers, same concurrent clients). Target: ≥ 50 % of the bare endpoint's rate.

Prints each figure, its baseline and the ratio; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

from swarm_director.db import Database, make_engine
from swarm_director.migrations import migrate
from swarm_director.models import AgentLog, Task, TaskType
from swarm_director.store import logs

HOST = "127.0.0.1"
BATCH = 1000
LEVELS = ("debug", "info", "info", "info", "warning", "error")
SWARM_DIRECTOR = [sys.executable, "-c", "from swarm_director.cli.main import cli; cli()"]

# -- the baseline app ------------------------------------------------------------------------


def bare_app() -> Any:
    """A bare Flask app with JSON endpoints shaped like GET /api/tasks/{id} and a page of
    50 of its logs."""
    from flask import Flask, jsonify

    app = Flask("bare")

    @app.get("/bare/<int:task_id>")
    def bare(task_id: int) -> Any:
        return jsonify(
            id=task_id,
            type="email_draft",
            user_id="user-1",
            status="pending",
            title=f"benchmark task {task_id}",
            description=None,
            priority="medium",
            assigned_agent_id=None,
            parent_task_id=None,
            conversation_id=None,
            completed_at=None,
            created_at="2026-11-01T00:00:00.000000Z",
            updated_at="2026-11-01T00:00:00.000000Z",
        )

    @app.get("/bare/<int:task_id>/logs")
    def bare_logs(task_id: int) -> Any:
        # The size and shape of GET /api/tasks/{id}/logs?limit=50 (bench/live.py's newest 50).
        record = {
            "task_id": task_id,
            "agent_type": "draft_writer",
            "message": "step 1.2: draft review email queued retry parsed timeout after 3 s",
            "timestamp": "2026-11-01T00:00:00.000000Z",
            "log_level": "warning",
            "agent_id": None,
            "session_id": "session-0-1",
            "metadata": {"step": 2, "sent": 1796000000.123456},
            "created_at": "2026-11-01T00:00:00.000000Z",
        }
        items = [{"id": 1_000_000 - i, **record} for i in range(50)]
        return jsonify(items=items, next_cursor="MTIzNDU2Nzg5MHxNVEl6TkRVMk56ZzVNQT09")

    return app


def serve_bare(port: int, workers: int) -> None:
    from swarm_director.cli.serve import run_gunicorn

    run_gunicorn(bare_app, host=HOST, port=port, workers=workers)


# -- servers and clients ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(command: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {process.communicate()[1]}") from None
                time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def throughput(port: int, paths: list[str], clients: int) -> float:
    """Requests/s with ``clients`` threads issuing the GETs in ``paths`` (split between them)."""
    errors: list[int] = []

    def run(mine: list[str]) -> None:
        for path in mine:
            status, _ = request(port, "GET", path)
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=run, args=(paths[i::clients],)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. HTTP {errors[0]}")
    return len(paths) / elapsed


# -- data ------------------------------------------------------------------------------------


def make_rows(n: int, start: datetime) -> list[dict[str, Any]]:
    """Log rows as an agent hands them over (the same rows feed the store and the HTTP side)."""
    return [
        {
            "agent_type": "draft_writer" if i % 3 else "director",
            "message": f"step {i}: drafted paragraph {i % 17} of the customer reply",
            "log_level": LEVELS[i % len(LEVELS)],
            "session_id": f"session-{i // 1000}",
            "metadata": {"step": i, "tokens": 120 + i % 50},
            "timestamp": start + timedelta(milliseconds=i),
        }
        for i in range(n)
    ]


def new_tasks(database: Database, count: int) -> list[int]:
    with database.transaction() as session:
        tasks = [Task(type=TaskType.EMAIL_DRAFT, title=f"benchmark task {i}") for i in range(count)]
        session.add_all(tasks)
        session.flush()
        return [task.id for task in tasks]


def fill_logs(database: Database, task_ids: list[int], total: int) -> float:
    """Bring agent_logs to ``total`` rows spread over ``task_ids`` with raw executemany."""
    with database.read() as session:
        have = int(session.scalar(select(func.count()).select_from(AgentLog)) or 0)
    missing = max(0, total - have)
    started = time.perf_counter()
    start = datetime(2026, 10, 1, tzinfo=UTC)
    columns = "task_id, agent_type, message, timestamp, log_level, session_id, metadata, created_at"
    chunk = 50_000
    if database.dialect == "sqlite":
        path = database.engine.url.database
        assert path is not None
        conn = sqlite3.connect(path, isolation_level=None)
        sql = f"INSERT INTO agent_logs ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

        def stamp(i: int) -> Any:
            return (start + timedelta(milliseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")

        meta: Any = json.dumps

        def commit_chunk(params: list[tuple[Any, ...]]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, params)
            conn.execute("COMMIT")

    else:
        import psycopg
        from psycopg.types.json import Jsonb

        dsn = database.engine.url.set(drivername="postgresql").render_as_string(False)
        conn = psycopg.connect(dsn)  # type: ignore[assignment]
        sql = f"INSERT INTO agent_logs ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"

        def stamp(i: int) -> Any:
            return start + timedelta(milliseconds=i)

        meta = Jsonb

        def commit_chunk(params: list[tuple[Any, ...]]) -> None:
            with conn.transaction(), conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.executemany(sql, params)

    try:
        for base in range(0, missing, chunk):
            count = min(chunk, missing - base)
            params = [
                (
                    task_ids[(base + j) % len(task_ids)],
                    "draft_writer",
                    f"bulk row {base + j}",
                    stamp(base + j),
                    LEVELS[(base + j) % len(LEVELS)],
                    f"session-{(base + j) // 1000}",
                    meta({"n": base + j}),
                    stamp(base + j),
                )
                for j in range(count)
            ]
            commit_chunk(params)
            print(f"\r  filled {base + count:,}/{missing:,} rows", end="", flush=True)
    finally:
        conn.close()
    print()
    # What autovacuum (PostgreSQL) or `db optimize` would do soon after such a load: without it
    # autovacuum works through the new rows while the latencies are measured, on the same cores.
    command = "ANALYZE agent_logs" if database.dialect == "sqlite" else "VACUUM ANALYZE agent_logs"
    autocommit = database.engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.exec_driver_sql(command)
    return time.perf_counter() - started


# -- the measurements ------------------------------------------------------------------------


def bench_ingest(
    database: Database, port: int, task_id: int, rows: list[dict[str, Any]], rounds: int
) -> tuple[float, float]:
    """(store rows/s, HTTP rows/s): medians over alternating rounds."""
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    bodies = [
        json.dumps(batch, default=lambda v: v.isoformat()).encode() for batch in batches
    ]  # encoded up front: the client's JSON encoding is not the server's cost
    store_rates: list[float] = []
    http_rates: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            with database.transaction() as session:
                logs.add_logs(session, task_id, batch)
        store_rates.append(len(rows) / (time.perf_counter() - start))

        start = time.perf_counter()
        for body in bodies:
            status, answer = request(port, "POST", f"/api/tasks/{task_id}/logs", body)
            if status != 201:
                raise SystemExit(f"ingest failed: HTTP {status} {answer[:200]!r}")
        http_rates.append(len(rows) / (time.perf_counter() - start))
    return statistics.median(store_rates), statistics.median(http_rates)


def bench_newest(port: int, task_ids: list[int], samples: int) -> list[float]:
    """Latencies (s) of GET newest-50 for random tasks, one request at a time."""
    rng = random.Random(7)
    for task_id in task_ids[:20]:  # warm the workers and caches
        request(port, "GET", f"/api/tasks/{task_id}/logs?limit=50")
    latencies: list[float] = []
    for _ in range(samples):
        task_id = rng.choice(task_ids)
        start = time.perf_counter()
        status, body = request(port, "GET", f"/api/tasks/{task_id}/logs?limit=50")
        latencies.append(time.perf_counter() - start)
        if status != 200 or len(json.loads(body)["items"]) != 50:
            raise SystemExit(f"newest-50 failed: HTTP {status}")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--logs", type=int, default=1_000_000, help="rows in agent_logs for (2)")
    parser.add_argument("--ingest-rows", type=int, default=50_000, help="rows per ingest round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1000, help="newest-50 requests")
    parser.add_argument("--requests", type=int, default=3000, help="GETs per throughput round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare, args.workers)
        return 0

    work = Path(tempfile.mkdtemp(prefix="sd-bench-api-"))
    url: URL = (
        make_url(args.database_url)
        if args.database_url
        else URL.create("sqlite", database=str(work / "bench.db"))
    )
    database = Database(make_engine(url))
    migrate.upgrade(database.engine, "head")
    url_text = url.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if k != "SWARM_API_TOKEN"}
    api_port, bare_port = free_port(), free_port()
    api_cmd = [
        *SWARM_DIRECTOR,
        "serve",
        "--database-url",
        url_text,
        "--port",
        str(api_port),
        "--workers",
        str(args.workers),
    ]
    bare_cmd = [
        sys.executable,
        __file__,
        "--serve-bare",
        str(bare_port),
        "--workers",
        str(args.workers),
    ]
    print(
        f"database: {database.masked_url}; gunicorn, {args.workers} gthread workers; "
        f"{args.clients} client threads; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    failed = False
    try:
        with server(api_cmd, api_port, env):
            # (1) ingest
            task_ids = new_tasks(database, 100)
            rows = make_rows(args.ingest_rows, datetime(2026, 11, 1, tzinfo=UTC))
            store_rate, http_rate = bench_ingest(database, api_port, task_ids[0], rows, args.rounds)
            ratio = http_rate / store_rate
            failed |= ratio < 0.30
            print(
                f"(1) batch ingest, {BATCH} rows/request: HTTP {http_rate:,.0f} rows/s, "
                f"store in-process {store_rate:,.0f} rows/s -> {ratio:.0%} (target >= 30%)"
            )

            # (2) newest 50 with --logs rows in the table
            seconds = fill_logs(database, task_ids, args.logs)
            with database.read() as session:
                total = session.scalar(select(func.count()).select_from(AgentLog))
            latencies = bench_newest(api_port, task_ids, args.samples)
            median, p99 = statistics.median(latencies), percentile(latencies, 0.99)
            failed |= median >= 0.005
            print(
                f"(2) newest 50 logs of a task, {total:,} rows in agent_logs "
                f"(filled in {seconds:.0f} s): median {median * 1000:.2f} ms, "
                f"p99 {p99 * 1000:.2f} ms over {args.samples} requests (target median < 5 ms)"
            )

            # (3) single-task GET vs bare Flask, alternating rounds
            with server(bare_cmd, bare_port, env):
                rng = random.Random(11)
                api_paths = [f"/api/tasks/{rng.choice(task_ids)}" for _ in range(args.requests)]
                bare_paths = [f"/bare/{rng.choice(task_ids)}" for _ in range(args.requests)]
                throughput(api_port, api_paths[:200], args.clients)  # warm-up
                throughput(bare_port, bare_paths[:200], args.clients)
                api_rates, bare_rates = [], []
                for _ in range(args.rounds):
                    bare_rates.append(throughput(bare_port, bare_paths, args.clients))
                    api_rates.append(throughput(api_port, api_paths, args.clients))
            api_rps, bare_rps = statistics.median(api_rates), statistics.median(bare_rates)
            ratio = api_rps / bare_rps
            failed |= ratio < 0.50
            print(
                f"(3) GET /api/tasks/{{id}}: {api_rps:,.0f} req/s, bare Flask endpoint "
                f"{bare_rps:,.0f} req/s -> {ratio:.0%} (target >= 50%)"
            )
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        database.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
