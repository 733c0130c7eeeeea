"""Conversations with participants and messages, and their exact counters."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.api.helpers import all_pages, created, error_of, make_agent, make_task


def _conversation(client: FlaskClient, **fields: object) -> dict[str, object]:
    return created(client, "/api/conversations", {"title": "Launch plan", **fields})


def test_conversation_crud_and_filters(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    first = _conversation(client, task_id=task_id, metadata={"channel": "email"})
    second = _conversation(client, title="Other")
    assert first["metadata"] == {"channel": "email"} and first["status"] == "active"
    assert client.get(f"/api/conversations/{first['id']}").get_json() == first

    done = client.patch(f"/api/conversations/{second['id']}", json={"status": "completed"})
    assert done.get_json()["completed_at"] is not None

    def titles(query: str) -> list[str]:
        return [c["title"] for c in all_pages(client, f"/api/conversations{query}", limit=1)]

    assert titles("") == ["Launch plan", "Other"]
    assert titles("?status=completed") == ["Other"]
    assert titles(f"?task_id={task_id}") == ["Launch plan"]

    assert client.delete(f"/api/conversations/{second['id']}").status_code == 204
    error_of(client.get(f"/api/conversations/{second['id']}"), 404)
    error_of(client.post("/api/conversations", json={"title": "x", "task_id": 999}), 422)


def test_participants_and_messages_keep_counts_exact(client: FlaskClient) -> None:
    conv = _conversation(client)
    cid = conv["id"]
    writer = make_agent(client, "writer")["id"]
    reviewer = make_agent(client, "reviewer")["id"]
    joined = created(client, f"/api/conversations/{cid}/participants", {"agent_id": writer})
    assert joined["agent_id"] == writer and joined["is_active"] is True
    created(
        client, f"/api/conversations/{cid}/participants", {"agent_id": reviewer, "role": "reviewer"}
    )
    error_of(client.post(f"/api/conversations/{cid}/participants", json={"agent_id": writer}), 409)
    error_of(client.post(f"/api/conversations/{cid}/participants", json={"agent_id": 999}), 422)

    first = created(
        client,
        f"/api/conversations/{cid}/messages",
        {"content": "Draft ready", "sender_agent_id": writer},
    )
    reply = created(
        client,
        f"/api/conversations/{cid}/messages",
        {
            "content": "Looks good",
            "sender_agent_id": reviewer,
            "parent_message_id": first["id"],
            "thread_id": "t1",
            "metadata": {"score": 9},
        },
    )
    assert reply["metadata"] == {"score": 9}
    assert [m["id"] for m in all_pages(client, f"/api/conversations/{cid}/messages", limit=1)] == [
        first["id"],
        reply["id"],
    ]
    assert [
        m["id"] for m in all_pages(client, f"/api/conversations/{cid}/messages?thread_id=t1")
    ] == [reply["id"]]
    counts = client.get(f"/api/conversations/{cid}").get_json()
    assert (counts["participant_count"], counts["message_count"]) == (2, 2)
    assert client.get(f"/api/agents/{writer}").get_json()["total_messages_sent"] == 1

    left = client.delete(f"/api/conversations/{cid}/participants/{writer}")
    assert left.status_code == 200 and left.get_json()["is_active"] is False
    error_of(client.delete(f"/api/conversations/{cid}/participants/{writer}"), 404)
    active = all_pages(client, f"/api/conversations/{cid}/participants?active=true")
    assert [p["agent_id"] for p in active] == [reviewer]
    assert len(all_pages(client, f"/api/conversations/{cid}/participants")) == 2
    assert client.get(f"/api/conversations/{cid}").get_json()["participant_count"] == 1
    # A former participant can no longer speak.
    response = client.post(
        f"/api/conversations/{cid}/messages", json={"content": "hi", "sender_agent_id": writer}
    )
    assert "sender_agent_id" in error_of(response, 422)["details"]["fields"]


def test_message_edit(client: FlaskClient) -> None:
    cid = _conversation(client)["id"]
    message = created(client, f"/api/conversations/{cid}/messages", {"content": "helo"})
    edited = client.patch(f"/api/messages/{message['id']}", json={"content": "hello"}).get_json()
    assert edited["content"] == "hello" and edited["is_edited"] is True
    assert edited["edit_count"] == 1
    assert client.get(f"/api/messages/{message['id']}").get_json() == edited
    error_of(client.patch(f"/api/messages/{message['id']}", json={"content": ""}), 422)
    error_of(client.get("/api/messages/999"), 404)


def test_closed_conversations_take_no_messages(client: FlaskClient) -> None:
    cid = _conversation(client)["id"]
    client.patch(f"/api/conversations/{cid}", json={"status": "archived"})
    error_of(client.post(f"/api/conversations/{cid}/messages", json={"content": "late"}), 409)
    agent = make_agent(client, "late")["id"]
    error_of(client.post(f"/api/conversations/{cid}/participants", json={"agent_id": agent}), 409)
