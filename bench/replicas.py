"""Reads on the primary against reads on a streaming standby, while a writer ingests at full
speed, in one run.

    .venv/bin/python -m bench.replicas [--logs 200000] [--seconds 8] [--rounds 3]

Starts its own PostgreSQL primary and streaming standby in temporary folders (the test
suite's ``tests/replication/cluster.py``: Debian's server packages, run as ``postgres``),
fills one task with ``--logs`` rows and 200 other tasks, then starts a writer process that
ingests batches of 500 logs through the store on the primary, as fast as it can, for the
whole run. Two apps read in this process (Flask test client, server-side time only), one
with no replicas (every read on the primary) and one with the standby in
``SWARM_REPLICA_URLS``; they alternate in rounds of ``--seconds`` each, two reader threads
each, reading:

1. the console's task page ``/ui/tasks/<big>``;
2. the newest 50 logs of that task, ``/api/tasks/<big>/logs?limit=50``.

Prints requests per second of each read on each side, the standby's figure as a ratio to the
primary's (the baseline, same run), the writer's rows per second during each side's rounds,
and the standby's lag as ``/api/ready`` showed it at the end of each replica round. On one
machine both servers share its cores, so this measures the routing's cost and the lag under
load more than the capacity a second machine adds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.replication.cluster import make_primary, make_standby, replay_caught_up, wait_until

from bench.api import fill_logs, new_tasks
from swarm_director import create_app
from swarm_director.db import Database, make_engine
from swarm_director.migrations import migrate
from swarm_director.store import logs
from swarm_director.web.context import database as app_database

BATCH = 500


def writer(url: str, task_id: int, stop: Any, counter: Any) -> None:
    """Ingest batches of logs until ``stop`` is set, adding each batch's size to counter."""
    db = Database(make_engine(url))
    n = 0
    try:
        while not stop.is_set():
            rows = [{"agent_type": "writer", "message": f"w {n} {i}"} for i in range(BATCH)]
            with db.transaction() as session:
                logs.add_logs(session, task_id, rows)
            n += 1
            with counter.get_lock():
                counter.value += BATCH
    finally:
        db.dispose()


def read_round(app: Any, urls: list[str], seconds: float, threads: int) -> dict[str, float]:
    """Requests per second of each URL over ``seconds``, ``threads`` readers per URL."""
    done: dict[str, int] = dict.fromkeys(urls, 0)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def read(url: str) -> None:
        client = app.test_client()
        count = 0
        while time.monotonic() < deadline:
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code}")
            response.close()
            count += 1
        with lock:
            done[url] += count

    workers = [threading.Thread(target=read, args=(u,)) for u in urls for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    return {url: count / elapsed for url, count in done.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=200_000, help="rows of the big task")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each side")
    parser.add_argument("--threads", type=int, default=2, help="reader threads per page")
    args = parser.parse_args()

    primary = make_primary()
    standby = None
    try:
        engine = make_engine(primary.url())
        migrate.upgrade(engine)
        engine.dispose()
        db = Database(make_engine(primary.url()))
        task_ids = new_tasks(db, 201)
        big, write_task = task_ids[0], task_ids[1]
        fill_logs(db, [big], args.logs)
        db.dispose()
        standby = make_standby(primary)
        wait_until(lambda: replay_caught_up(primary, standby), 120, "the standby")

        data = tempfile.mkdtemp(prefix="bench-replicas-")
        base = {"SWARM_API_TOKEN": None, "SWARM_DATA_DIR": str(Path(data)), "SWARM_TIMINGS": "0"}
        on_primary = create_app({**base, "DATABASE_URL": primary.url_text()})
        on_standby = create_app(
            {
                **base,
                "DATABASE_URL": primary.url_text(),
                "SWARM_REPLICA_URLS": standby.url_text(),
                "SWARM_REPLICA_MAX_LAG_S": "30",
            }
        )
        urls = [f"/ui/tasks/{big}", f"/api/tasks/{big}/logs?limit=50"]
        for app in (on_primary, on_standby):
            read_round(app, urls, 1.0, 1)  # warm-up: templates, pools, the replica monitor

        stop = multiprocessing.Event()
        counter = multiprocessing.Value("q", 0)
        process = multiprocessing.Process(
            target=writer, args=(primary.url_text(), write_task, stop, counter)
        )
        process.start()
        results: dict[str, list[dict[str, float]]] = {"primary": [], "standby": []}
        written: dict[str, list[float]] = {"primary": [], "standby": []}
        lags: list[Any] = []
        try:
            time.sleep(1.0)
            for _ in range(args.rounds):
                for side, app in (("primary", on_primary), ("standby", on_standby)):
                    before, started = counter.value, time.monotonic()
                    results[side].append(read_round(app, urls, args.seconds, args.threads))
                    written[side].append((counter.value - before) / (time.monotonic() - started))
                    if side == "standby":
                        ready = app.test_client().get("/api/ready").get_json()
                        lags.append(ready["replicas"][0]["lag_s"])
        finally:
            stop.set()
            process.join(timeout=60)
        for app in (on_primary, on_standby):
            app_database(app).dispose()

        load = os.getloadavg()
        print(
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.logs:,} logs in "
            f"the big task; {args.rounds} rounds of {args.seconds:.0f} s per side, "
            f"{args.threads} reader threads per page"
        )
        for url, name in zip(urls, ["task page", "newest 50"], strict=True):
            p = statistics.median(r[url] for r in results["primary"])
            s = statistics.median(r[url] for r in results["standby"])
            print(f"{name:10} primary {p:7.1f} req/s   standby {s:7.1f} req/s   ratio {s / p:.2f}")
        wp, ws = statistics.median(written["primary"]), statistics.median(written["standby"])
        print(
            f"writer     during primary reads {wp:8.0f} rows/s   during standby reads "
            f"{ws:8.0f} rows/s   ratio {ws / wp:.2f}"
        )
        print(f"standby lag at the end of each standby round (s): {lags}")
    finally:
        if standby is not None:
            standby.remove()
        primary.remove()


if __name__ == "__main__":
    main()
