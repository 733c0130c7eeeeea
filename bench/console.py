"""Console pages rendered server-side beside the JSON API calls for the same data.

    .venv/bin/python -m bench.console [--logs 1000000] [--rounds 30] [--database-url URL]

Fills a fresh, migrated database (a temporary SQLite file unless ``--database-url`` names an
empty PostgreSQL database at head) with one task holding ``--logs`` log rows (raw
``executemany``, as bench/api.py fills), 200 other tasks, and 20,000 logs of the last hour
spread over 50 tasks (so the overview's "busiest tasks" has real work). Then, in one process
through the Flask test client (server-side time only, no network), alternating each round:

1. the task page ``/ui/tasks/<big>`` against the five API calls that return its data
   (task, subtasks, newest 50 logs, drafts, emails), summed;
2. the overview ``/ui/`` against ``/api/tasks?status=failed``, ``/api/agents`` and
   ``/api/ready`` summed (the overview's other figures have no API call of their own).

Prints medians and ratios. Target: each page's median < 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.api import fill_logs, new_tasks
from swarm_director import create_app
from swarm_director.db import Database, make_engine, utcnow
from swarm_director.migrations import migrate
from swarm_director.store import logs
from swarm_director.web.context import database as app_database

TARGET_MS = 100.0


def timed(client: Any, urls: list[str]) -> float:
    start = time.perf_counter()
    for url in urls:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.get_data(as_text=True)}")
        response.close()
    return (time.perf_counter() - start) * 1000


def add_recent(db: Database, task_ids: list[int], total: int) -> None:
    now = utcnow()
    per = total // len(task_ids)
    for task_id in task_ids:
        rows = [
            {
                "agent_type": "worker",
                "message": f"recent {i}",
                "timestamp": now - timedelta(seconds=per - i),
            }
            for i in range(per)
        ]
        with db.transaction() as session:
            logs.add_logs(session, task_id, rows)


def compare(client: Any, page: list[str], api: list[str], rounds: int) -> tuple[float, float, int]:
    for _ in range(3):  # warm caches, compile templates
        timed(client, page)
        timed(client, api)
    pages, apis = [], []
    for _ in range(rounds):
        pages.append(timed(client, page))
        apis.append(timed(client, api))
    size = len(client.get(page[0]).data)
    return statistics.median(pages), statistics.median(apis), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'console.db'}"
        db = Database(make_engine(make_url(url), create_dirs=True))
        try:
            migrate.upgrade(db.engine)
            big = new_tasks(db, 1)[0]
            others = new_tasks(db, 200)
            print(f"filling {args.logs:,} logs of task {big} ...")
            seconds = fill_logs(db, [big], args.logs)
            print(f"  {seconds:.1f} s")
            add_recent(db, others[:50], 20_000)
        finally:
            db.dispose()
        app = create_app({"DATABASE_URL": url, "SWARM_API_TOKEN": None, "SWARM_DATA_DIR": tmp})
        client = app.test_client()
        try:
            task_api = [
                f"/api/tasks/{big}",
                f"/api/tasks/{big}/subtasks",
                f"/api/tasks/{big}/logs?limit=50",
                f"/api/tasks/{big}/drafts",
                f"/api/tasks/{big}/emails",
            ]
            overview_api = ["/api/tasks?status=failed", "/api/agents", "/api/ready"]
            results: list[tuple[str, Callable[[], tuple[float, float, int]]]] = [
                ("task page", lambda: compare(client, [f"/ui/tasks/{big}"], task_api, args.rounds)),
                ("overview", lambda: compare(client, ["/ui/"], overview_api, args.rounds)),
            ]
            failed = False
            dialect = app_database(app).dialect
            print(f"\n{dialect}, {args.logs:,} logs in task {big}, medians of {args.rounds}:")
            for name, run in results:
                page_ms, api_ms, size = run()
                ok = page_ms < TARGET_MS
                failed |= not ok
                print(
                    f"  {name:<10} HTML {page_ms:6.1f} ms ({size / 1024:.0f} KiB)   "
                    f"API calls {api_ms:6.1f} ms   ratio {page_ms / api_ms:4.2f}   "
                    f"target < {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}"
                )
        finally:
            app_database(app).dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
