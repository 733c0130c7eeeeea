"""/api/agents and /api/tasks: CRUD, every filter, subtasks, hierarchy and status rules."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api.helpers import all_pages, error_of, make_agent, make_task

# -- agents ----------------------------------------------------------------------------------


def test_agent_create_get_update_delete(client: FlaskClient) -> None:
    director = make_agent(client, "director", agent_type="supervisor", capabilities=["route"])
    response = client.post(
        "/api/agents",
        json={"name": "writer", "agent_type": "specialist", "parent_id": director["id"]},
    )
    assert response.status_code == 201
    writer = response.get_json()
    assert response.headers["Location"] == f"/api/agents/{writer['id']}"
    assert writer["parent_id"] == director["id"]
    assert writer["status"] == "idle"
    assert writer["created_at"].endswith(("Z", "+00:00"))

    got = client.get(f"/api/agents/{writer['id']}").get_json()
    assert got == writer

    patched = client.patch(f"/api/agents/{writer['id']}", json={"status": "busy"}).get_json()
    assert patched["status"] == "busy" and patched["name"] == "writer"

    assert client.delete(f"/api/agents/{director['id']}").status_code == 204
    error_of(client.get(f"/api/agents/{director['id']}"), 404)
    assert client.get(f"/api/agents/{writer['id']}").get_json()["parent_id"] is None


def test_agent_name_conflict_is_409(client: FlaskClient) -> None:
    make_agent(client, "unique")
    error = error_of(
        client.post("/api/agents", json={"name": "unique", "agent_type": "worker"}), 409
    )
    assert error["code"] == "conflict"
    other = make_agent(client, "other")
    error_of(client.patch(f"/api/agents/{other['id']}", json={"name": "unique"}), 409)


def test_agent_hierarchy_cycle_is_409(client: FlaskClient) -> None:
    top = make_agent(client, "top")
    mid = make_agent(client, "mid", parent_id=top["id"])
    low = make_agent(client, "low", parent_id=mid["id"])
    error_of(client.patch(f"/api/agents/{top['id']}", json={"parent_id": low["id"]}), 409)
    error_of(client.patch(f"/api/agents/{top['id']}", json={"parent_id": top["id"]}), 409)


def test_agent_missing_parent_is_422(client: FlaskClient) -> None:
    error = error_of(
        client.post("/api/agents", json={"name": "x", "agent_type": "worker", "parent_id": 999}),
        422,
    )
    assert "parent_id" in error["details"]["fields"]


def test_agent_filters(client: FlaskClient) -> None:
    boss = make_agent(client, "boss", agent_type="supervisor", status="active")
    make_agent(client, "w1", parent_id=boss["id"], status="busy")
    make_agent(client, "w2", parent_id=boss["id"])
    make_agent(client, "solo", agent_type="specialist")

    def names(query: str) -> list[str]:
        return [a["name"] for a in all_pages(client, f"/api/agents{query}")]

    assert names("") == ["boss", "w1", "w2", "solo"]
    assert names("?agent_type=worker") == ["w1", "w2"]
    assert names("?status=busy") == ["w1"]
    assert names(f"?parent_id={boss['id']}") == ["w1", "w2"]
    assert names(f"?parent_id={boss['id']}&status=idle") == ["w2"]
    error_of(client.get("/api/agents?agent_type=manager"), 422)


# -- tasks -----------------------------------------------------------------------------------


def test_task_create_get_update_delete(client: FlaskClient) -> None:
    agent = make_agent(client, "writer")
    task = make_task(client, "Reply to ACME", user_id="u-1", assigned_agent_id=agent["id"])
    assert task["status"] == "pending" and task["priority"] == "medium"
    assert client.get(f"/api/tasks/{task['id']}").get_json() == task

    patched = client.patch(
        f"/api/tasks/{task['id']}", json={"priority": "high", "description": "asap"}
    ).get_json()
    assert patched["priority"] == "high" and patched["description"] == "asap"

    assert client.delete(f"/api/tasks/{task['id']}").status_code == 204
    error_of(client.get(f"/api/tasks/{task['id']}"), 404)
    error_of(client.delete(f"/api/tasks/{task['id']}"), 404)


def test_task_title_is_required_and_bounded(client: FlaskClient) -> None:
    error = error_of(client.post("/api/tasks", json={"type": "analysis"}), 422)
    assert "title" in error["details"]["fields"]
    error = error_of(client.post("/api/tasks", json={"type": "analysis", "title": "x" * 201}), 422)
    assert "title" in error["details"]["fields"]
    task = make_task(client)
    error_of(client.patch(f"/api/tasks/{task['id']}", json={"title": None}), 422)


def test_task_filters(client: FlaskClient) -> None:
    a1 = make_agent(client, "a1")
    a2 = make_agent(client, "a2")
    parent = make_task(client, "parent", user_id="alice", assigned_agent_id=a1["id"])
    make_task(client, "child-1", user_id="alice", parent_task_id=parent["id"], priority="high")
    make_task(
        client,
        "child-2",
        type="analysis",
        user_id="bob",
        parent_task_id=parent["id"],
        assigned_agent_id=a2["id"],
        priority="critical",
    )
    other = make_task(client, "other", type="document_review", user_id="bob", priority="low")
    client.patch(f"/api/tasks/{other['id']}", json={"status": "in_progress"})

    def titles(query: str) -> list[str]:
        return [t["title"] for t in all_pages(client, f"/api/tasks{query}")]

    assert titles("") == ["parent", "child-1", "child-2", "other"]
    assert titles("?status=in_progress") == ["other"]
    assert titles("?status=pending") == ["parent", "child-1", "child-2"]
    assert titles("?type=analysis") == ["child-2"]
    assert titles("?user_id=alice") == ["parent", "child-1"]
    assert titles(f"?assigned_agent_id={a2['id']}") == ["child-2"]
    assert titles(f"?parent_task_id={parent['id']}") == ["child-1", "child-2"]
    assert titles("?priority=low") == ["other"]
    assert titles(f"?user_id=bob&parent_task_id={parent['id']}&priority=critical") == ["child-2"]
    assert titles("?user_id=nobody") == []


def test_subtasks(client: FlaskClient) -> None:
    parent = make_task(client, "parent")
    for i in range(5):
        make_task(client, f"sub-{i}", parent_task_id=parent["id"])
    make_task(client, "unrelated")
    subs = all_pages(client, f"/api/tasks/{parent['id']}/subtasks", limit=2)
    assert [t["title"] for t in subs] == [f"sub-{i}" for i in range(5)]
    error_of(client.get("/api/tasks/9999/subtasks"), 404)


def test_deleting_a_task_deletes_its_subtasks(client: FlaskClient) -> None:
    parent = make_task(client, "parent")
    child = make_task(client, "child", parent_task_id=parent["id"])
    client.delete(f"/api/tasks/{parent['id']}")
    error_of(client.get(f"/api/tasks/{child['id']}"), 404)


def test_task_parent_cycle_is_409(client: FlaskClient) -> None:
    a = make_task(client, "a")
    b = make_task(client, "b", parent_task_id=a["id"])
    error_of(client.patch(f"/api/tasks/{a['id']}", json={"parent_task_id": b["id"]}), 409)


LEGAL = [
    ("pending", "in_progress"),
    ("pending", "failed"),
    ("in_progress", "completed"),
    ("in_progress", "failed"),
    ("failed", "pending"),
]
PATH_TO = {
    "pending": [],
    "in_progress": ["in_progress"],
    "failed": ["failed"],
    "completed": ["in_progress", "completed"],
}
STATUSES = ["pending", "in_progress", "completed", "failed"]


def _task_in(client: FlaskClient, status: str) -> int:
    task = make_task(client, f"in {status}")
    for step in PATH_TO[status]:
        response = client.patch(f"/api/tasks/{task['id']}", json={"status": step})
        assert response.status_code == 200, response.get_json()
    return int(task["id"])


@pytest.mark.parametrize(
    ("start", "target"),
    [(s, t) for s in STATUSES for t in STATUSES if s != t],
)
def test_task_status_transitions(client: FlaskClient, start: str, target: str) -> None:
    task_id = _task_in(client, start)
    response = client.patch(f"/api/tasks/{task_id}", json={"status": target})
    if (start, target) in LEGAL:
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["status"] == target
        assert (body["completed_at"] is not None) == (target == "completed")
    else:
        error = error_of(response, 409)
        assert error["code"] == "invalid_transition"
        assert error["details"]["from"] == start and error["details"]["to"] == target
        assert client.get(f"/api/tasks/{task_id}").get_json()["status"] == start


def test_claim_with_expected_status_succeeds_once(client: FlaskClient) -> None:
    task_id = make_task(client, title="claim me")["id"]
    claim = {"status": "in_progress", "expected_status": "pending"}
    first = client.patch(f"/api/tasks/{task_id}", json=claim)
    assert first.status_code == 200 and first.get_json()["status"] == "in_progress"
    assert "expected_status" not in first.get_json()  # a precondition, not a stored field
    second = client.patch(f"/api/tasks/{task_id}", json={**claim, "title": "stolen"})
    error = error_of(second, 409)
    assert error["code"] == "conflict" and "is in_progress, not pending" in error["message"]
    assert error["details"] == {"status": "in_progress", "expected_status": "pending"}
    assert client.get(f"/api/tasks/{task_id}").get_json()["title"] == "claim me"
    bad = client.patch(f"/api/tasks/{task_id}", json={"expected_status": "sleeping"})
    assert error_of(bad, 422)["details"]["fields"].keys() == {"expected_status"}


def test_illegal_transition_changes_no_other_field(client: FlaskClient) -> None:
    task_id = _task_in(client, "completed")
    response = client.patch(f"/api/tasks/{task_id}", json={"status": "pending", "title": "new"})
    error_of(response, 409)
    assert client.get(f"/api/tasks/{task_id}").get_json()["title"] == "in completed"
