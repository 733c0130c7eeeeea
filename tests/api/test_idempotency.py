"""Idempotency-Key on batch ingest: a client that times out and retries stores its batch once."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from swarm_director.db import make_engine
from tests.api.conftest import url_text
from tests.reliability.procs import Server


def _batch(n: int, word: str = "step") -> list[dict[str, Any]]:
    return [{"agent_type": "worker", "message": f"{word} {i}"} for i in range(n)]


def _task(client: FlaskClient) -> int:
    response = client.post("/api/tasks", json={"type": "analysis", "title": "ingest"})
    assert response.status_code == 201
    return int(response.get_json()["id"])


def _count(client: FlaskClient, task_id: int) -> int:
    page = client.get(f"/api/tasks/{task_id}/logs?limit=1000").get_json()
    return len(page["items"])


def test_retry_with_same_key_answers_the_same_and_stores_once(client: FlaskClient) -> None:
    task_id = _task(client)
    headers = {"Idempotency-Key": "batch-0001"}
    first = client.post(f"/api/tasks/{task_id}/logs", json=_batch(20), headers=headers)
    again = client.post(f"/api/tasks/{task_id}/logs", json=_batch(20), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json() == {"task_id": task_id, "inserted": 20}
    assert _count(client, task_id) == 20


def test_same_key_with_another_body_is_409_and_stores_nothing(client: FlaskClient) -> None:
    task_id = _task(client)
    headers = {"Idempotency-Key": "batch-0001"}
    assert (
        client.post(f"/api/tasks/{task_id}/logs", json=_batch(3), headers=headers).status_code
        == 201
    )
    other = client.post(f"/api/tasks/{task_id}/logs", json=_batch(3, "x"), headers=headers)
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "conflict"
    assert _count(client, task_id) == 3


@pytest.mark.parametrize("key", ["x" * 201, "ключ"])
def test_malformed_key_is_422(client: FlaskClient, key: str) -> None:
    task_id = _task(client)
    response = client.post(
        f"/api/tasks/{task_id}/logs",
        data=json.dumps(_batch(2)),
        content_type="application/json",
        headers={"Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status_code == 422
    assert _count(client, task_id) == 0


def test_key_on_a_single_record_is_refused(client: FlaskClient) -> None:
    task_id = _task(client)
    response = client.post(
        f"/api/tasks/{task_id}/logs",
        json={"agent_type": "worker", "message": "one"},
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["error"]["details"]["fields"]
    assert _count(client, task_id) == 0


def _stored(db_url: URL, task_id: int) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM agent_logs WHERE task_id = :t")
            return int(conn.scalar(query, {"t": task_id}) or 0)
    finally:
        engine.dispose()


def _post(url: str, body: Any, key: str, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def test_client_that_times_out_and_retries_stores_the_batch_once(
    db_url: URL, tmp_path: Path
) -> None:
    """A real server; the client gives up before the answer arrives, then retries."""
    server = Server(url_text(db_url), tmp_path / "server.log").start()
    base = f"http://127.0.0.1:{server.port}/api"
    try:
        request = urllib.request.Request(
            f"{base}/tasks",
            data=json.dumps({"type": "analysis", "title": "retry"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            task_id = json.loads(response.read())["id"]
        body = _batch(10_000)
        # The client sends the whole batch, then gives up (times out) before reading the
        # answer; the server goes on and commits it.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request(
            "POST",
            f"/api/tasks/{task_id}/logs",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Idempotency-Key": "retry-1"},
        )
        conn.close()
        deadline = time.monotonic() + 60
        while _stored(db_url, task_id) < 10_000:
            assert time.monotonic() < deadline, "the abandoned batch never committed"
            time.sleep(0.1)
        status, answer = _post(f"{base}/tasks/{task_id}/logs", body, "retry-1", timeout=60)
        assert status == 201 and answer == {"task_id": task_id, "inserted": 10_000}
        status, answer = _post(f"{base}/tasks/{task_id}/logs", body, "retry-1", timeout=60)
        assert answer["inserted"] == 10_000
        stored = _stored(db_url, task_id)
        assert stored == 10_000
    finally:
        server.stop()
