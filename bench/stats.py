"""``GET /api/admin/stats`` on a database with many logs, beside a bare Flask endpoint.

    .venv/bin/python bench/stats.py [--logs 1000000] [--samples 50] [--database-url URL]

Builds the app in-process on a database migrated to head whose ``agent_logs`` is brought to
``--logs`` rows (raw ``executemany``, then ``ANALYZE``, as in ``bench/api.py``; an existing
database given by ``--database-url`` is reused and only topped up, so the same data can be
measured before and after a change). Then calls ``/api/admin/stats`` and a bare Flask JSON
endpoint through their WSGI test clients, alternating, ``--samples`` times each, and prints
the medians. Target: admin stats well under 50 ms (exit 1 at 50 ms or more).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from bench.api import bare_app, fill_logs, new_tasks
from swarm_director import create_app
from swarm_director.db import Database, make_engine
from swarm_director.migrations import migrate
from swarm_director.web.context import database as app_database

TARGET_S = 0.050


def timed(client: Any, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code} {response.data[:200]!r}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--logs", type=int, default=1_000_000, help="rows in agent_logs")
    parser.add_argument("--samples", type=int, default=50, help="requests per endpoint")
    parser.add_argument("--database-url", help="database to use (default: temporary SQLite)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="sd-bench-stats-"))
    url: URL = (
        make_url(args.database_url)
        if args.database_url
        else URL.create("sqlite", database=str(work / "bench.db"))
    )
    database = Database(make_engine(url, create_dirs=True))
    migrate.upgrade(database.engine, "head")
    print(
        f"database: {database.masked_url}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    app = None
    try:
        task_ids = new_tasks(database, 100)
        seconds = fill_logs(database, task_ids, args.logs)
        print(f"agent_logs at {args.logs:,} rows (topped up in {seconds:.0f} s)")
        app = create_app(
            {
                "DATABASE_URL": url.render_as_string(hide_password=False),
                "SWARM_API_TOKEN": None,
                "SWARM_TIMINGS": False,  # measure the endpoint, not the collector
                "TESTING": True,
            }
        )
        api, bare = app.test_client(), bare_app().test_client()
        for _ in range(3):  # warm-up: imports, pools, caches
            timed(api, "/api/admin/stats")
            timed(bare, "/bare/1")
        api_times, bare_times = [], []
        for _ in range(args.samples):
            bare_times.append(timed(bare, "/bare/1"))
            api_times.append(timed(api, "/api/admin/stats"))
        api_median, bare_median = statistics.median(api_times), statistics.median(bare_times)
        print(
            f"GET /api/admin/stats: median {api_median * 1000:.2f} ms, "
            f"max {max(api_times) * 1000:.2f} ms; bare Flask endpoint median "
            f"{bare_median * 1000:.3f} ms ({args.samples} calls each, alternating; "
            f"target < {TARGET_S * 1000:.0f} ms)"
        )
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        return 0 if api_median < TARGET_S else 1
    finally:
        if app is not None:
            app_database(app).dispose()
        database.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
