"""Small builders used across the API tests."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def created(client: FlaskClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``url``, assert 201 and return the JSON."""
    response = client.post(url, json=body)
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def make_agent(client: FlaskClient, name: str, **fields: Any) -> dict[str, Any]:
    return created(client, "/api/agents", {"name": name, "agent_type": "worker", **fields})


def make_task(
    client: FlaskClient, title: str = "Write the launch email", **fields: Any
) -> dict[str, Any]:
    return created(client, "/api/tasks", {"type": "email_draft", "title": title, **fields})


def all_pages(client: FlaskClient, url: str, limit: int = 2) -> list[dict[str, Any]]:
    """Every item of a paginated list, following next_cursor."""
    items: list[dict[str, Any]] = []
    sep = "&" if "?" in url else "?"
    response = client.get(f"{url}{sep}limit={limit}")
    while True:
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        response = client.get(f"{url}{sep}limit={limit}&cursor={page['next_cursor']}")


def error_of(response: Any, status: int) -> dict[str, Any]:
    """Assert ``status`` and the one error shape; return the inner error object."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error
