"""Drafts: numbered versions, review-only PATCH, diffs."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.api.helpers import all_pages, created, error_of, make_agent, make_task


def test_versions_are_assigned_and_readable(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    author = make_agent(client, "writer")["id"]
    first = created(
        client,
        f"/api/tasks/{task_id}/drafts",
        {"content": "Dear ACME,\n", "author_agent_id": author},
    )
    second = created(client, f"/api/tasks/{task_id}/drafts", {"content": "Dear ACME team,\n"})
    assert (first["version"], second["version"]) == (1, 2)
    assert first["author_agent_id"] == author and first["status"] == "draft"

    assert client.get(f"/api/drafts/{second['id']}").get_json() == second
    assert client.get(f"/api/tasks/{task_id}/drafts/1").get_json() == first
    listed = all_pages(client, f"/api/tasks/{task_id}/drafts", limit=1)
    assert [d["version"] for d in listed] == [1, 2]

    error_of(client.get(f"/api/tasks/{task_id}/drafts/3"), 404)
    error_of(client.get("/api/tasks/999/drafts"), 404)
    error_of(client.post("/api/tasks/999/drafts", json={"content": "x"}), 404)
    error_of(client.get("/api/drafts/999"), 404)


def test_versions_are_per_task(client: FlaskClient) -> None:
    a = make_task(client, "a")["id"]
    b = make_task(client, "b")["id"]
    created(client, f"/api/tasks/{a}/drafts", {"content": "a1"})
    assert created(client, f"/api/tasks/{b}/drafts", {"content": "b1"})["version"] == 1


def test_review_changes_status_and_notes_but_never_content(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    reviewer = make_agent(client, "reviewer")["id"]
    draft = created(client, f"/api/tasks/{task_id}/drafts", {"content": "v1"})
    response = client.patch(
        f"/api/drafts/{draft['id']}",
        json={"status": "approved", "reviewer_agent_id": reviewer, "review_notes": "good"},
    )
    assert response.status_code == 200
    reviewed = response.get_json()
    assert reviewed["status"] == "approved" and reviewed["review_notes"] == "good"
    assert reviewed["reviewer_agent_id"] == reviewer

    error = error_of(client.patch(f"/api/drafts/{draft['id']}", json={"content": "v1!"}), 422)
    assert "content" in error["details"]["fields"]
    assert client.get(f"/api/drafts/{draft['id']}").get_json()["content"] == "v1"
    error_of(client.patch(f"/api/drafts/{draft['id']}", json={"reviewer_agent_id": 999}), 422)
    error_of(client.patch(f"/api/drafts/{draft['id']}", json={"status": "lost"}), 422)


def test_diff_between_versions(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    created(client, f"/api/tasks/{task_id}/drafts", {"content": "Hello\nworld\n"})
    created(client, f"/api/tasks/{task_id}/drafts", {"content": "Hello\nthere\n"})
    response = client.get(f"/api/tasks/{task_id}/drafts/diff?from_version=1&to_version=2")
    assert response.status_code == 200
    body = response.get_json()
    assert body["from_version"] == 1 and body["to_version"] == 2
    assert "-world\n" in body["diff"] and "+there\n" in body["diff"]
    same = client.get(f"/api/tasks/{task_id}/drafts/diff?from_version=2&to_version=2")
    assert same.get_json()["diff"] == ""
    error_of(client.get(f"/api/tasks/{task_id}/drafts/diff?from_version=1&to_version=9"), 404)
    error = error_of(client.get(f"/api/tasks/{task_id}/drafts/diff?from_version=1"), 422)
    assert "to_version" in error["details"]["fields"]
