"""Task logs: single and batch ingest, every filter, pagination under concurrent inserts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient

from swarm_director.ops.stats import collect_stats
from swarm_director.web.context import database
from tests.api.helpers import all_pages, error_of, make_agent, make_task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _log(i: int, **fields: Any) -> dict[str, Any]:
    return {"agent_type": "writer", "message": f"step {i}", "timestamp": _at(i), **fields}


def test_single_record_is_answered_with_the_record(client: FlaskClient) -> None:
    task = make_task(client)
    response = client.post(
        f"/api/tasks/{task['id']}/logs",
        json={"agent_type": "director", "message": "routed", "metadata": {"to": "email"}},
    )
    assert response.status_code == 201
    log = response.get_json()
    assert log["task_id"] == task["id"] and log["log_level"] == "info"
    assert log["metadata"] == {"to": "email"}
    assert log["timestamp"].endswith(("Z", "+00:00"))
    assert client.get(f"/api/tasks/{task['id']}/logs").get_json()["items"] == [log]


def test_batch_of_1000_is_stored(client: FlaskClient) -> None:
    task = make_task(client)
    rows = [_log(i) for i in range(1000)]
    response = client.post(f"/api/tasks/{task['id']}/logs", json=rows)
    assert response.status_code == 201
    assert response.get_json() == {"task_id": task["id"], "inserted": 1000}
    # Counted (admin stats only estimates rows on PostgreSQL until the table is analyzed).
    stats = collect_stats(database(client.application).engine, exact=True)
    assert {t["name"]: t["rows"] for t in stats.tables}["agent_logs"] == 1000


def test_one_bad_row_in_1000_stores_nothing_and_names_the_row(client: FlaskClient) -> None:
    task = make_task(client)
    rows = [_log(i) for i in range(1000)]
    rows[731]["log_level"] = "catastrophic"
    error = error_of(client.post(f"/api/tasks/{task['id']}/logs", json=rows), 422)
    assert "[731].log_level" in error["details"]["fields"]
    assert "731" in error["message"]
    assert client.get(f"/api/tasks/{task['id']}/logs").get_json()["items"] == []


def test_a_missing_agent_in_a_batch_stores_nothing(client: FlaskClient) -> None:
    task = make_task(client)
    rows = [_log(i) for i in range(10)]
    rows[4]["agent_id"] = 4242
    error = error_of(client.post(f"/api/tasks/{task['id']}/logs", json=rows), 422)
    assert "[4].agent_id" in error["details"]["fields"]
    assert client.get(f"/api/tasks/{task['id']}/logs").get_json()["items"] == []


def test_batch_limits_and_bad_shapes(client: FlaskClient) -> None:
    task = make_task(client)
    url = f"/api/tasks/{task['id']}/logs"
    too_many = [{"agent_type": "a", "message": "m"}] * 10_001
    error = error_of(client.post(url, json=too_many), 422)
    assert "10000" in error["message"]
    error_of(client.post(url, json="just a string"), 422)
    error_of(client.post(url, json=[1, 2]), 422)
    error_of(client.post(url, json={"message": "no agent type"}), 422)
    assert client.post(url, json=[]).get_json() == {"task_id": task["id"], "inserted": 0}
    error_of(client.post("/api/tasks/777/logs", json=[_log(1)]), 404)
    error_of(client.get("/api/tasks/777/logs"), 404)


def _seed(client: FlaskClient) -> tuple[int, int, int]:
    agent = make_agent(client, "w")
    t1 = make_task(client, "one")["id"]
    t2 = make_task(client, "two")["id"]
    levels = ["debug", "info", "warning", "error"]
    rows = [
        _log(
            i,
            log_level=levels[i % 4],
            agent_type="writer" if i % 2 else "reviewer",
            session_id=f"s{i % 3}",
            agent_id=agent["id"] if i % 5 == 0 else None,
        )
        for i in range(20)
    ]
    assert client.post(f"/api/tasks/{t1}/logs", json=rows).status_code == 201
    assert client.post(f"/api/tasks/{t2}/logs", json=[_log(100)]).status_code == 201
    return t1, t2, int(agent["id"])


def _steps(client: FlaskClient, url: str) -> list[int]:
    return [int(item["message"].split()[1]) for item in all_pages(client, url, limit=3)]


def test_task_log_filters(client: FlaskClient) -> None:
    t1, _, agent_id = _seed(client)
    base = f"/api/tasks/{t1}/logs"
    assert _steps(client, base) == list(range(19, -1, -1))  # newest first
    assert _steps(client, f"{base}?order=asc") == list(range(20))
    assert _steps(client, f"{base}?order=asc&level=warning") == [i for i in range(20) if i % 4 >= 2]
    assert _steps(client, f"{base}?order=asc&level=error") == [i for i in range(20) if i % 4 == 3]
    assert _steps(client, f"{base}?order=asc&level=debug") == list(range(20))
    assert _steps(client, f"{base}?order=asc&agent_type=reviewer") == list(range(0, 20, 2))
    assert _steps(client, f"{base}?order=asc&session_id=s1") == list(range(1, 20, 3))
    assert _steps(client, f"{base}?order=asc&agent_id={agent_id}") == [0, 5, 10, 15]
    since, until = quote(_at(5)), quote(_at(9))
    assert _steps(client, f"{base}?order=asc&since={since}&until={until}") == [5, 6, 7, 8]
    assert _steps(client, f"{base}?since={since}&until={until}&level=warning") == [7, 6]
    error_of(client.get(f"{base}?level=fatal"), 422)
    error_of(client.get(f"{base}?order=sideways"), 422)
    error_of(client.get(f"{base}?since=yesterday"), 422)


def test_logs_across_tasks(client: FlaskClient) -> None:
    t1, t2, _ = _seed(client)
    assert _steps(client, "/api/logs?order=asc")[-1] == 100
    assert len(_steps(client, "/api/logs")) == 21
    assert _steps(client, f"/api/logs?task_id={t2}") == [100]
    assert len(_steps(client, f"/api/logs?task_id={t1}&level=error")) == 5
    error_of(client.get("/api/logs?task_id=0"), 422)


def test_a_cursor_is_validated(client: FlaskClient) -> None:
    t1, _, _ = _seed(client)
    page = client.get(f"/api/tasks/{t1}/logs?limit=2").get_json()
    cursor = page["next_cursor"]
    # A cursor of one listing is refused by another (here: the other order).
    error_of(client.get(f"/api/tasks/{t1}/logs?order=asc&cursor={cursor}"), 422)
    for bad in ("garbage", cursor[:-3], "x" * 2000):
        error = error_of(client.get(f"/api/tasks/{t1}/logs?cursor={bad}"), 422)
        assert "cursor" in error["details"]["fields"]


def test_pagination_under_concurrent_inserts(app: Flask) -> None:
    """Paging through a task's logs oldest-first while another client keeps appending:
    every row that existed at the start appears exactly once, in order."""
    client = app.test_client()
    task_id = make_task(client)["id"]
    rows = [_log(i) for i in range(300)]
    assert client.post(f"/api/tasks/{task_id}/logs", json=rows).status_code == 201

    stop = threading.Event()
    errors: list[Any] = []

    def writer() -> None:
        other = app.test_client()
        n = 1000
        while not stop.is_set():
            # New rows land both inside the range already paged and after it.
            batch = [_log(n, message=f"step {n}"), _log(n % 300, message=f"step {n}")]
            response = other.post(f"/api/tasks/{task_id}/logs", json=batch)
            if response.status_code != 201:
                errors.append(response.get_json())
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[tuple[str, int]] = []
        url = f"/api/tasks/{task_id}/logs?order=asc&limit=7"
        response = client.get(url)
        while True:
            page = response.get_json()
            seen.extend((item["timestamp"], item["id"]) for item in page["items"])
            if page["next_cursor"] is None or len(seen) > 600:
                break
            response = client.get(f"{url}&cursor={page['next_cursor']}")
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert seen == sorted(seen), "pages went backwards"
    ids = {row_id for _, row_id in seen}
    assert set(range(1, 301)) <= ids, "a row that existed before paging was skipped"
