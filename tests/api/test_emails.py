"""Emails: per task, the outbox, the delivery lifecycle."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.helpers import all_pages, created, error_of, make_task


def _email(client: FlaskClient, task_id: int, **fields: Any) -> dict[str, Any]:
    body = {"recipient": "ops@acme.example", "subject": "Status", "body": "All good.", **fields}
    return created(client, f"/api/tasks/{task_id}/emails", body)


def test_create_and_read(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    email = _email(client, task_id, cc=["a@acme.example"], sender="bot@swarm.example")
    assert email["status"] == "draft" and email["sent_at"] is None
    assert email["cc"] == ["a@acme.example"] and email["bcc"] == []
    assert client.get(f"/api/emails/{email['id']}").get_json() == email
    assert all_pages(client, f"/api/tasks/{task_id}/emails") == [email]
    error_of(client.get("/api/emails/999"), 404)
    error_of(client.get("/api/tasks/999/emails"), 404)
    error_of(
        client.post(
            "/api/tasks/999/emails", json={"recipient": "a@b.example", "subject": "s", "body": "b"}
        ),
        404,
    )


def test_invalid_addresses_are_named(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    response = client.post(
        f"/api/tasks/{task_id}/emails",
        json={
            "recipient": "not-an-address",
            "subject": "s",
            "body": "b",
            "cc": ["ok@x.example", "bad"],
        },
    )
    fields = error_of(response, 422)["details"]["fields"]
    assert "recipient" in fields and "cc[1]" in fields


def test_outbox_lists_queued_emails_across_tasks(client: FlaskClient) -> None:
    t1 = make_task(client, "one")["id"]
    t2 = make_task(client, "two")["id"]
    q1 = _email(client, t1, status="queued")
    _email(client, t1)
    q2 = _email(client, t2, status="queued")
    outbox = all_pages(client, "/api/emails?status=queued", limit=1)
    assert [e["id"] for e in outbox] == [q1["id"], q2["id"]]
    assert [e["id"] for e in all_pages(client, f"/api/emails?status=queued&task_id={t2}")] == [
        q2["id"]
    ]
    assert len(all_pages(client, "/api/emails")) == 3
    assert len(all_pages(client, f"/api/tasks/{t1}/emails?status=draft")) == 1
    error_of(client.get("/api/emails?status=lost"), 422)


def test_lifecycle_to_delivered(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    email = _email(client, task_id)
    url = f"/api/emails/{email['id']}"
    assert client.patch(url, json={"status": "queued"}).get_json()["status"] == "queued"
    sent = client.patch(url, json={"status": "sent"}).get_json()
    assert sent["status"] == "sent" and sent["sent_at"] is not None
    delivered = client.patch(url, json={"status": "delivered"}).get_json()
    assert delivered["status"] == "delivered" and delivered["sent_at"] == sent["sent_at"]
    error = error_of(client.patch(url, json={"status": "queued"}), 409)
    assert error["code"] == "invalid_transition"


def test_failure_and_retry(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    email = _email(client, task_id, status="queued")
    url = f"/api/emails/{email['id']}"
    failed = client.patch(url, json={"status": "failed", "error_message": "550 no such user"})
    assert failed.get_json()["error_message"] == "550 no such user"
    retried = client.patch(url, json={"status": "queued"}).get_json()
    assert retried["status"] == "queued" and retried["error_message"] is None
    error_of(client.patch(url, json={"status": "queued", "error_message": "x"}), 422)


@pytest.mark.parametrize(
    ("path", "target"),
    [([], "sent"), ([], "delivered"), (["queued"], "delivered"), (["queued", "sent"], "draft")],
)
def test_illegal_status_changes_are_409(client: FlaskClient, path: list[str], target: str) -> None:
    task_id = make_task(client)["id"]
    email = _email(client, task_id)
    url = f"/api/emails/{email['id']}"
    for step in path:
        assert client.patch(url, json={"status": step}).status_code == 200
    error_of(client.patch(url, json={"status": target}), 409)
    assert client.get(url).get_json()["status"] == (path[-1] if path else "draft")


def test_only_drafts_can_be_edited(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    email = _email(client, task_id)
    url = f"/api/emails/{email['id']}"
    assert client.patch(url, json={"subject": "New"}).get_json()["subject"] == "New"
    client.patch(url, json={"status": "queued"})
    error = error_of(client.patch(url, json={"subject": "Too late"}), 409)
    assert "subject" in error["details"]["fields"]
    assert client.get(url).get_json()["subject"] == "New"
