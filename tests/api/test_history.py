"""History over HTTP: each entity's own changes and the swarm's, filtered and paged."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.api.helpers import all_pages, created, make_agent, make_task


def test_each_entity_has_its_history_oldest_first(client: FlaskClient) -> None:
    agent = make_agent(client, "writer")
    task = make_task(client)
    client.patch(f"/api/tasks/{task['id']}", json={"title": "Renamed"})
    draft = created(client, f"/api/tasks/{task['id']}/drafts", {"content": "v1"})
    email = created(
        client,
        f"/api/tasks/{task['id']}/emails",
        {"recipient": "a@example.com", "subject": "s", "body": "b"},
    )
    chat = created(client, "/api/conversations", {"title": "chat"})
    client.patch(f"/api/agents/{agent['id']}", json={"status": "busy"})

    rows = client.get(f"/api/tasks/{task['id']}/history").get_json()["items"]
    assert [r["action"] for r in rows] == ["create", "update"]
    assert rows[1]["changes"] == {"title": ["Write the launch email", "Renamed"]}
    assert rows[0]["actor"] == "anonymous"  # the service runs without authentication here
    for route, entity in (
        (f"/api/agents/{agent['id']}/history", "agent"),
        (f"/api/drafts/{draft['id']}/history", "draft"),
        (f"/api/emails/{email['id']}/history", "email"),
        (f"/api/conversations/{chat['id']}/history", "conversation"),
    ):
        items = client.get(route).get_json()["items"]
        assert items and {r["entity"] for r in items} == {entity}, route
    agent_rows = client.get(f"/api/agents/{agent['id']}/history").get_json()["items"]
    assert agent_rows[-1]["changes"]["status"] == ["idle", "busy"]


def test_a_deleted_task_s_history_is_still_there(client: FlaskClient) -> None:
    task = make_task(client)["id"]
    assert client.delete(f"/api/tasks/{task}").status_code == 204
    rows = client.get(f"/api/tasks/{task}/history").get_json()["items"]
    assert [r["action"] for r in rows] == ["create", "delete"]
    assert rows[1]["changes"]["title"] == ["Write the launch email", None]


def test_the_swarm_s_history_filters_and_pages(client: FlaskClient) -> None:
    for n in range(5):
        make_task(client, f"task {n}")
    make_agent(client, "a1")
    tasks = all_pages(client, "/api/history?entity=task&order=asc", limit=2)
    assert [r["changes"]["title"][1] for r in tasks] == [f"task {n}" for n in range(5)]
    newest = client.get("/api/history?limit=1").get_json()["items"]
    assert newest[0]["entity"] == "agent"
    assert client.get("/api/history?action=delete").get_json()["items"] == []
    assert client.get("/api/history?since=2999-01-01T00:00:00Z").get_json()["items"] == []
    for bad in ("entity=log", "since=yesterday", "limit=0", "order=up", "entity_id=0"):
        response = client.get(f"/api/history?{bad}")
        assert response.status_code == 422, bad
