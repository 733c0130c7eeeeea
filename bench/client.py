"""The Python client against raw ``http.client``, and RemoteLogHandler's cost to the agent.

    .venv/bin/python bench/client.py [--rows 100000] [--rounds 3] [--calls 20000]

Starts ``swarm-director serve`` on a fresh temporary SQLite database (``--database-url`` for an
empty PostgreSQL one) and measures, in one run:

1. Batch log ingest, 1,000 rows per POST, through ``Client.add_logs`` against the same batches
   sent with ``http.client`` on one kept-alive connection (same JSON rows, same headers, an
   ``Idempotency-Key`` each), alternating rounds. Target: client ≥ 90 % of raw.
3. What one open log stream costs the database: a ``LogFollower`` (the stream's data access)
   polling every ``SWARM_STREAM_POLL_S`` (0.5 s) on the same database, idle and while a writer
   adds 10 rows every 0.1 s: statements per second and database time per poll.
2. What ``logger.info`` costs the agent's thread with a ``RemoteLogHandler`` attached (the
   server up, batches leaving in the background), against the same logger with a
   ``logging.NullHandler``: median and p99 per call. Target: median < 20 µs.

Prints each figure beside its baseline; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swarm_director.client import Client, RemoteLogHandler

HOST = "127.0.0.1"
BATCH = 1000
SWARM_DIRECTOR = [sys.executable, "-c", "from swarm_director.cli.main import cli; cli()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(database_url: str, port: int, workers: int) -> Iterator[str]:
    args = ["serve", "--port", str(port), "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SWARM_API_TOKEN")}
    process = subprocess.Popen(
        [*SWARM_DIRECTOR, *args, "--database-url", database_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(url, retry=None) as probe:
                    probe.health()
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {process.communicate()[1]}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rows(count: int, round_no: int) -> list[list[dict[str, object]]]:
    batch = [
        {
            "agent_type": "bench",
            "message": f"round {round_no} record {i}: " + "x" * 60,
            "log_level": "info",
            "session_id": "bench",
            "metadata": {"i": i, "round": round_no},
        }
        for i in range(count)
    ]
    return [batch[i : i + BATCH] for i in range(0, count, BATCH)]


def ingest_client(url: str, task_id: int, batches: list[list[dict[str, object]]]) -> float:
    with Client(url) as client:
        started = time.perf_counter()
        for batch in batches:
            client.add_logs(task_id, batch)
        return time.perf_counter() - started


def ingest_raw(port: int, task_id: int, batches: list[list[dict[str, object]]]) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    path = f"/api/tasks/{task_id}/logs"
    try:
        started = time.perf_counter()
        for batch in batches:
            headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
            conn.request("POST", path, body=json.dumps(batch).encode(), headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise SystemExit(f"raw ingest failed: {response.status}")
        return time.perf_counter() - started
    finally:
        conn.close()


def per_call(logger: logging.Logger, calls: int) -> list[float]:
    """Seconds of each ``logger.info`` call."""
    timings = []
    clock = time.perf_counter
    for i in range(calls):
        started = clock()
        logger.info("step %d of the plan done", i)
        timings.append(clock() - started)
        if i % 1000 == 999:
            time.sleep(0.05)  # an agent does other work between log lines
    return timings


def quantiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99)]


def stream_cost(database_url: str, task_id: int, seconds: float = 5.0, poll: float = 0.5) -> None:
    """(3): statements/s and database time per poll of one stream, idle and busy."""
    import threading

    from swarm_director.db import Database, make_engine
    from swarm_director.store import logs
    from swarm_director.store.log_stream import LogFollower

    db = Database(make_engine(database_url))
    try:
        for label, busy in (("idle", False), ("busy", True)):
            follower = LogFollower(log_filter={"task_id": task_id})
            stop = threading.Event()

            def write(stop: threading.Event = stop) -> None:
                while not stop.wait(0.1):
                    with db.transaction() as session:
                        logs.add_logs(session, task_id, [{"agent_type": "w", "message": "m"}] * 10)

            writer = threading.Thread(target=write)
            if busy:
                writer.start()
            polls, rows, spent = 0, 0, 0.0
            ended = time.monotonic() + seconds
            while time.monotonic() < ended:
                started = time.perf_counter()
                with db.statement_reads() as connection:
                    rows += len(follower.poll(connection))
                spent += time.perf_counter() - started
                polls += 1
                time.sleep(poll)
            stop.set()
            if busy:
                writer.join()
            print(
                f"(3) one stream, {label}: {follower.queries / seconds:.1f} statements/s, "
                f"{spent / polls * 1000:.2f} ms of database time per poll, {rows} rows "
                f"in {seconds:.0f} s (poll every {poll} s)"
            )
    finally:
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per ingest round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20_000, help="logger.info calls timed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", help="an empty, migrated database (default: SQLite)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sd-bench-client-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        subprocess.run(
            [*SWARM_DIRECTOR, "db", "init", "--database-url", url],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        with serve(url, port, args.workers) as base:
            print(
                f"server {base}, {args.workers} workers; load average "
                f"{os.getloadavg()[0]:.1f} at start"
            )
            with Client(base) as client:
                task_id = client.create_task({"type": "analysis", "title": "bench"}).id
            ingest_client(base, task_id, rows(BATCH * 5, -1))  # warm both paths
            ingest_raw(port, task_id, rows(BATCH * 5, -2))
            client_s = raw_s = 0.0
            for round_no in range(args.rounds):
                client_s += ingest_client(base, task_id, rows(args.rows, round_no))
                raw_s += ingest_raw(port, task_id, rows(args.rows, round_no))
            total = args.rows * args.rounds
            ratio = raw_s / client_s
            ok_ingest = ratio >= 0.9
            print(
                f"(1) batch ingest, {BATCH} rows/POST: Client {total / client_s:,.0f} rows/s, "
                f"raw http.client {total / raw_s:,.0f} rows/s -> {ratio:.0%} (target >= 90%)"
            )

            base_logger = logging.getLogger("bench.null")
            base_logger.propagate = False
            base_logger.addHandler(logging.NullHandler())
            base_logger.setLevel(logging.INFO)
            handler = RemoteLogHandler(base, task_id=task_id, agent_type="bench")
            logger = logging.getLogger("bench.remote")
            logger.propagate = False
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            per_call(logger, 2000)  # warm
            null_med, null_p99 = quantiles(per_call(base_logger, args.calls))
            med, p99 = quantiles(per_call(logger, args.calls))
            handler.close()
            ok_handler = med < 20e-6
            print(
                f"(2) logger.info with RemoteLogHandler: median {med * 1e6:.1f} µs, "
                f"p99 {p99 * 1e6:.1f} µs over {args.calls} calls; with a NullHandler: "
                f"median {null_med * 1e6:.1f} µs, p99 {null_p99 * 1e6:.1f} µs "
                f"(target median < 20 µs); sent {handler.sent}, dropped {handler.dropped}"
            )
        stream_cost(url, task_id)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ok_ingest and ok_handler else 1


if __name__ == "__main__":
    sys.exit(main())
