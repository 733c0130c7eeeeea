"""Two real servers of one database, started in different folders, share one list of slow
statements: ``db stats`` from a third folder shows what each of them ran."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from tests.api.conftest import url_text
from tests.serving import SWARM_DIRECTOR, ServeProcess, serve_env


@contextmanager
def serve(url: URL, folder: Path) -> Iterator[tuple[int, int]]:
    """``swarm-director serve`` (one worker) started in ``folder``; yields (port, pid)."""
    folder.mkdir()
    env = serve_env(
        {"DATABASE_URL": url_text(url), "SWARM_TIMINGS_FLUSH": "0.2s"}, drop_prefix="SWARM_"
    )
    with ServeProcess(None, folder, env=env) as server:
        assert server.process is not None
        yield server.port, server.process.pid


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _db_stats(url: URL, folder: Path) -> dict[str, Any]:
    result = subprocess.run(
        [*SWARM_DIRECTOR, "db", "stats", "--json"],
        cwd=folder,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SWARM_")},
            "DATABASE_URL": url_text(url),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stats: dict[str, Any] = json.loads(result.stdout)
    return stats


def _workers_of(slow: list[dict[str, Any]], table: str) -> set[str]:
    return {source for s in slow if f"FROM {table}" in s["shape"] for source in s["sources"]}


def test_db_stats_from_a_third_folder_lists_the_statements_of_both_servers(
    db_url: URL, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        port_a, _ = stack.enter_context(serve(db_url, tmp_path / "a"))
        port_b, _ = stack.enter_context(serve(db_url, tmp_path / "b"))
        for _ in range(3):
            assert _get(port_a, "/api/tasks?status=pending") == 200
            assert _get(port_b, "/api/agents") == 200
        assert _get(port_b, "/api/tasks?status=pending") == 200
        # The workers flush every 0.2 s here (30 s by default), off the request path.
        third = tmp_path / "c"
        third.mkdir()
        deadline = time.monotonic() + 30
        while True:
            stats = _db_stats(db_url, third)
            tasks = _workers_of(stats["slow_statements"], "tasks")
            agents = _workers_of(stats["slow_statements"], "agents")
            if len(tasks) == 2 and agents:
                break
            assert time.monotonic() < deadline, stats["slow_statements"]
            time.sleep(0.3)
    # The task list ran in both servers (two worker processes), the agent list in one of
    # them; the third folder has no timings files of its own: the list is the database's.
    assert agents < tasks
    [listed] = [s for s in stats["slow_statements"] if "FROM tasks" in s["shape"]]
    assert listed["count"] == 4
    assert not list(tmp_path.rglob("*.json")) and not list(third.iterdir())
