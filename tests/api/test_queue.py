"""The work queue over HTTP: claim, heartbeat, complete and fail with a lease token; a stale
token is 409 and changes nothing; each step lands in the history with the key's name."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from swarm_director.db import utcnow
from swarm_director.models import Task
from swarm_director.store import keys
from swarm_director.web.context import database
from tests.api.conftest import AppFactory
from tests.api.helpers import make_agent, make_task


def _claim(client: FlaskClient, agent_id: int, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/api/tasks/claim", json={"agent_id": agent_id, **body})
    assert response.status_code == 200, response.get_json()
    claims: list[dict[str, Any]] = response.get_json()["claims"]
    return claims


def test_claim_heartbeat_complete_and_a_refused_stale_completion(client: FlaskClient) -> None:
    agent = make_agent(client, "worker-1")["id"]
    task = make_task(client, priority="high")["id"]
    make_task(client, "later")
    (claim,) = _claim(client, agent, lease_s=30)
    assert claim["task"]["id"] == task and claim["task"]["status"] == "in_progress"
    assert claim["task"]["attempts"] == 1 and "lease_token" not in claim["task"]
    token = claim["lease_token"]

    beat = client.post(f"/api/tasks/{task}/heartbeat", json={"lease_token": token, "lease_s": 90})
    assert (
        beat.status_code == 200 and beat.get_json()["lease_expires_at"] > claim["lease_expires_at"]
    )
    done = client.post(
        f"/api/tasks/{task}/complete", json={"lease_token": token, "result": {"n": 1}}
    )
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["result"]) == ("completed", {"n": 1})

    again = client.post(
        f"/api/tasks/{task}/complete", json={"lease_token": token, "result": {"n": 2}}
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["details"]["reason"] == "not_the_lease_holder"
    assert client.get(f"/api/tasks/{task}").get_json()["result"] == {"n": 1}


def test_fail_retries_then_fails_for_good(make_app: AppFactory) -> None:
    client = make_app(SWARM_QUEUE_BACKOFF_BASE_S=0.01).test_client()
    agent = make_agent(client, "worker-1")["id"]
    task = make_task(client, max_attempts=2)["id"]
    (claim,) = _claim(client, agent)
    failed = client.post(
        f"/api/tasks/{task}/fail", json={"lease_token": claim["lease_token"], "error": "boom"}
    )
    assert failed.status_code == 200
    assert (failed.get_json()["status"], failed.get_json()["last_error"]) == ("pending", "boom")
    time.sleep(0.05)
    (claim,) = _claim(client, agent)
    final = client.post(
        f"/api/tasks/{task}/fail", json={"lease_token": claim["lease_token"], "error": "boom 2"}
    )
    assert final.get_json()["status"] == "failed"
    dead = client.get("/api/tasks/dead").get_json()["items"]
    assert [t["id"] for t in dead] == [task]


def test_an_expired_lease_is_listed_and_taken_over(client: FlaskClient) -> None:
    agent = make_agent(client, "worker-1")["id"]
    other = make_agent(client, "worker-2")["id"]
    task = make_task(client)["id"]
    (first,) = _claim(client, agent, lease_s=0.05)
    time.sleep(0.1)
    stuck = client.get("/api/tasks/expired-leases").get_json()["items"]
    assert [t["id"] for t in stuck] == [task]
    (second,) = _claim(client, other)
    assert second["task"]["id"] == task
    zombie = client.post(f"/api/tasks/{task}/complete", json={"lease_token": first["lease_token"]})
    assert zombie.status_code == 409


def test_a_waiting_claim_answers_when_a_task_is_created(app: Flask) -> None:
    client = app.test_client()
    agent = make_agent(client, "worker-1")["id"]
    answers: list[tuple[float, list[dict[str, Any]]]] = []

    def wait() -> None:
        claims = _claim(app.test_client(), agent, wait_s=10)
        answers.append((time.monotonic(), claims))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    task = make_task(client)["id"]
    created = time.monotonic()
    waiter.join(10)
    ((answered, claims),) = answers
    assert [c["task"]["id"] for c in claims] == [task]
    assert answered - created < 0.5


def test_a_wait_with_no_task_answers_empty(client: FlaskClient) -> None:
    agent = make_agent(client, "worker-1")["id"]
    started = time.monotonic()
    assert _claim(client, agent, wait_s=0.2) == []
    assert time.monotonic() - started >= 0.2


def test_bad_queue_requests_are_422_and_change_nothing(client: FlaskClient) -> None:
    agent = make_agent(client, "worker-1")["id"]
    task = make_task(client)["id"]
    for body in (
        {"agent_id": agent, "lease_s": 0},
        {"agent_id": agent, "wait_s": 61},
        {"agent_id": agent, "limit": 0},
        {"agent_id": agent, "types": ["nope"]},
        {"agent_id": 0},
        {"agent_id": agent, "extra": 1},
        {"agent_id": agent, "wait_s": False},  # lax mode read false as 0
        {"agent_id": agent, "lease_s": "60"},
        {"agent_id": agent, "limit": True},
    ):
        assert client.post("/api/tasks/claim", json=body).status_code == 422, body
    assert client.post("/api/tasks/claim", json={"agent_id": 99999}).status_code == 404
    for route, body in (
        ("heartbeat", {}),
        ("complete", {"lease_token": ""}),
        ("fail", {"lease_token": "x"}),
        ("fail", {"lease_token": "x", "error": ""}),
    ):
        assert client.post(f"/api/tasks/{task}/{route}", json=body).status_code == 422
    for body in ({"not_before": 0}, {"max_attempts": True}, {"not_before": "1700000000"}):
        create = client.post("/api/tasks", json={"type": "analysis", "title": "t", **body})
        assert create.status_code == 422, body  # a number was read as Unix time
    assert client.get(f"/api/tasks/{task}").get_json()["status"] == "pending"


def test_each_queue_step_is_in_the_history_with_the_key_s_name(make_app: AppFactory) -> None:
    app = make_app()
    with database(app).transaction() as session:
        token = keys.create_key(session, "worker-fleet", "write").token
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    agent = make_agent(client, "worker-1")["id"]
    task = make_task(client)["id"]
    (claim,) = _claim(client, agent)
    client.post(f"/api/tasks/{task}/complete", json={"lease_token": claim["lease_token"]})
    response = client.get(f"/api/tasks/{task}/history", headers={"X-Request-ID": "req-42"})
    rows = response.get_json()["items"]
    assert response.headers["X-Request-ID"] == "req-42"
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("create", "worker-fleet"),
        ("claim", "worker-fleet"),
        ("complete", "worker-fleet"),
    ]
    assert rows[1]["changes"]["status"] == ["pending", "in_progress"]
    assert all(r["request_id"] for r in rows)


def test_requeue_puts_an_expired_lease_back_and_refuses_a_live_one(client: FlaskClient) -> None:
    agent = make_agent(client, "worker-1")["id"]
    task = make_task(client, max_attempts=1)["id"]
    (claim,) = _claim(client, agent, lease_s=30)
    live = client.post(f"/api/tasks/{task}/requeue", json={})
    assert live.status_code == 409 and live.get_json()["error"]["details"]["reason"] == "lease_live"
    assert client.get(f"/api/tasks/{task}").get_json()["status"] == "in_progress"
    with database(client.application).transaction() as s:  # the lease runs out
        s.execute(
            Task.__table__.update()
            .where(Task.id == task)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    done = client.post(f"/api/tasks/{task}/requeue", json={})
    assert done.status_code == 200
    body = done.get_json()
    assert (body["status"], body["assigned_agent_id"], body["lease_expires_at"]) == (
        "pending",
        None,
        None,
    )
    assert body["max_attempts"] == 2  # it had used its one attempt: one more
    zombie = client.post(f"/api/tasks/{task}/complete", json={"lease_token": claim["lease_token"]})
    assert zombie.status_code == 409
    again = client.post(f"/api/tasks/{task}/requeue", json={})
    assert again.status_code == 409
    assert again.get_json()["error"]["details"]["reason"] == "not_in_progress"
    assert client.post("/api/tasks/424242/requeue", json={}).status_code == 404
    history = client.get(f"/api/tasks/{task}/history").get_json()["items"]
    assert [h["action"] for h in history][-1] == "requeue"
    (retaken,) = _claim(client, agent)
    assert retaken["task"]["id"] == task and retaken["task"]["attempts"] == 2


def test_an_operator_fails_a_running_task_with_a_reason(client: FlaskClient) -> None:
    agent = make_agent(client, "worker-1")["id"]
    task = make_task(client)["id"]
    (claim,) = _claim(client, agent, lease_s=30)
    response = client.patch(
        f"/api/tasks/{task}",
        json={"status": "failed", "expected_status": "in_progress", "last_error": "by hand"},
    )
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["last_error"]) == (
        "failed",
        "by hand",
    )
    late = client.post(f"/api/tasks/{task}/complete", json={"lease_token": claim["lease_token"]})
    assert late.status_code == 409
