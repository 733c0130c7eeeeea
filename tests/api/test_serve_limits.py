"""A real ``swarm-director serve`` refuses a 15 MB body of five million tiny JSON values with a
413 naming the limit, and its worker's peak memory grows by less than four times the body.

Before the limits, such a body took a worker from 118 to 898 MiB: parsed, each ``{}`` of three
bytes became a dict of 64 and a list slot of 8, before validation made more.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from tests.reliability.conftest import migrated_database, url_text
from tests.reliability.procs import Server

TOKEN = "serve-limits-token"
#: The issue's body: ``{"metadata": {"a": [{}, {}, ...]}}`` with five million items, 15 MB.
ITEMS = 5_000_000


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _post(port: int, path: str, body: bytes) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_15_mb_body_of_tiny_values_is_refused_in_proportion(dialect: str, tmp_path: Path) -> None:
    body = (
        b'{"agent_type": "a", "message": "m", "metadata": {"a": ['
        + b",".join([b"{}"] * ITEMS)
        + b"]}}"
    )
    assert len(body) > 15_000_000
    with migrated_database(dialect, tmp_path) as url:
        server = Server(
            url_text(url), tmp_path / "server.log", workers=1, env={"SWARM_API_TOKEN": TOKEN}
        ).start()
        try:
            status, task = _post(server.port, "/api/tasks", b'{"type": "analysis", "title": "t"}')
            assert status == 201, task
            (worker,) = server.worker_pids()
            # Warm the path once (imports, first connection), then measure from here: writing
            # 5 to clear_refs resets the peak (VmHWM) to the current resident size.
            assert _post(server.port, f"/api/tasks/{task['id']}/logs", b"[]")[0] == 201
            Path(f"/proc/{worker}/clear_refs").write_text("5")
            before = _status_kib(worker, "VmHWM")

            status, answer = _post(server.port, f"/api/tasks/{task['id']}/logs", body)

            growth = (_status_kib(worker, "VmHWM") - before) * 1024
            assert status == 413, answer
            error = answer["error"]
            assert isinstance(error, dict)
            assert error["code"] == "payload_too_large"
            assert error["details"]["limit"] == "SWARM_MAX_REQUEST_VALUES"
            assert error["details"]["field"] == "metadata.a"
            assert "SWARM_MAX_REQUEST_VALUES" in error["message"]
            assert growth < 4 * len(body), f"peak grew by {growth / 2**20:.0f} MiB"
            print(f"\nworker peak +{growth / 2**20:.1f} MiB, body {len(body) / 2**20:.1f} MiB")
            status, page = _post(server.port, "/api/tasks", b'{"type": "analysis", "title": "u"}')
            assert status == 201, page  # the worker is still there
        finally:
            server.stop()
