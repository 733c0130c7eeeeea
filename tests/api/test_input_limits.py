"""Inputs that used to cost a 500 (timestamps outside what a datetime holds once in UTC) or
hundreds of MiB (free-form JSON of millions of values): each gets a 4xx naming the limit."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from swarm_director.api.logs import MAX_BATCH
from swarm_director.config import Settings
from swarm_director.schemas.json_limits import count_values
from tests.api.conftest import SHORT_STREAMS, AppFactory
from tests.api.helpers import error_of, make_task

#: Valid ISO 8601 texts whose UTC time falls outside years 1..9999.
OVERFLOWING = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return make_app(**SHORT_STREAMS).test_client()


def _timestamp_queries(client: FlaskClient) -> list[tuple[str, str]]:
    """(path, parameter) of every query parameter that is a date-time, from the OpenAPI
    document, so a new one is covered too."""
    document = client.get("/api/openapi.json").get_json()
    found = []
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and "date-time" in str(parameter["schema"]):
                    found.append((path.replace("{task_id}", "1"), parameter["name"]))
    return found


@pytest.mark.parametrize("value", OVERFLOWING)
def test_an_overflowing_timestamp_in_a_query_is_a_422_naming_it(
    client: FlaskClient, value: str
) -> None:
    make_task(client)
    queries = _timestamp_queries(client)
    assert len(queries) >= 8  # since and until of the two lists and the two streams
    for path, name in queries:
        error = error_of(client.get(f"{path}?{name}={quote(value)}"), 422)
        assert name in error["details"]["fields"], (path, error)
        assert "UTC" in error["details"]["fields"][name]


@pytest.mark.parametrize("value", OVERFLOWING)
def test_an_overflowing_timestamp_in_a_log_body_is_a_422_naming_it(
    client: FlaskClient, value: str
) -> None:
    url = f"/api/tasks/{make_task(client)['id']}/logs"
    row: dict[str, Any] = {"agent_type": "a", "message": "m", "timestamp": value}
    error = error_of(client.post(url, json=row), 422)
    assert "timestamp" in error["details"]["fields"]
    error = error_of(client.post(url, json=[{"agent_type": "a", "message": "ok"}, row]), 422)
    assert "[1].timestamp" in error["details"]["fields"]
    assert client.get(url).get_json()["items"] == []


# -- what one free-form JSON value and one body may cost ---------------------------------------

MAX_ITEMS = 10_000
TOO_MANY = {"a": [0] * MAX_ITEMS}  # with the list itself: one value more than the limit
TOO_LARGE = {"a": "x" * 64 * 1024}

#: Every body field that holds free-form JSON, with a valid body around it (ids of _seed).
FREE_FORM: list[tuple[str, str, str, dict[str, Any]]] = [
    ("post", "/api/agents", "config", {"name": "n2", "agent_type": "worker"}),
    ("patch", "/api/agents/1", "config", {}),
    ("post", "/api/tasks/1/logs", "metadata", {"agent_type": "a", "message": "m"}),
    ("post", "/api/conversations", "metadata", {"title": "t"}),
    ("patch", "/api/conversations/1", "metadata", {}),
    ("post", "/api/conversations/1/messages", "metadata", {"content": "c"}),
    ("patch", "/api/messages/1", "metadata", {}),
]


def _seed(client: FlaskClient) -> None:
    for url, body in [
        ("/api/agents", {"name": "n", "agent_type": "worker"}),
        ("/api/tasks", {"type": "analysis", "title": "t"}),
        ("/api/conversations", {"title": "t"}),
        ("/api/conversations/1/messages", {"content": "c"}),
    ]:
        assert client.post(url, json=body).status_code == 201, url


def _free_form_fields(client: FlaskClient) -> set[str]:
    """``Model.field`` of every object-valued field of a request body, from the OpenAPI
    document (so a new free-form field fails the test below until it is listed)."""
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    return {
        f"{name}.{field}"
        for name, schema in schemas.items()
        if name.endswith(("Create", "Update"))
        for field, spec in (schema.get("properties") or {}).items()
        if '"type": "object"' in json.dumps(spec)
    }


def _everything(client: FlaskClient) -> list[Any]:
    return [
        client.get(url).get_json()
        for url in ("/api/agents", "/api/tasks/1/logs", "/api/conversations", "/api/messages/1")
    ]


def test_every_free_form_field_is_covered(client: FlaskClient) -> None:
    assert _free_form_fields(client) == {
        "AgentCreate.config",
        "AgentUpdate.config",
        "LogCreate.metadata",
        "ConversationCreate.metadata",
        "ConversationUpdate.metadata",
        "MessageCreate.metadata",
        "MessageUpdate.metadata",
    }


@pytest.mark.parametrize(
    ("document", "setting"),
    [(TOO_MANY, "SWARM_MAX_JSON_ITEMS"), (TOO_LARGE, "SWARM_MAX_JSON_BYTES")],
)
def test_a_free_form_field_over_a_limit_is_a_422_naming_field_and_limit(
    client: FlaskClient, document: dict[str, Any], setting: str
) -> None:
    _seed(client)
    before = _everything(client)
    for method, url, field, body in FREE_FORM:
        response = client.open(url, method=method.upper(), json={**body, field: document})
        error = error_of(response, 422)
        assert setting in error["details"]["fields"][field], (url, error)
        assert field in error["message"] and setting in error["message"], (url, error)
    # A batch names the record.
    batch = [
        {"agent_type": "a", "message": "m"},
        {"agent_type": "a", "message": "m", "metadata": document},
    ]
    error = error_of(client.post("/api/tasks/1/logs", json=batch), 422)
    assert setting in error["details"]["fields"]["[1].metadata"]
    assert _everything(client) == before


def test_the_limits_are_settings(make_app: AppFactory) -> None:
    client = make_app(SWARM_MAX_JSON_ITEMS=3, SWARM_MAX_JSON_BYTES=40).test_client()
    _seed(client)
    url = "/api/tasks/1/logs"
    row = {"agent_type": "a", "message": "m"}
    assert client.post(url, json={**row, "metadata": {"a": [1, 2]}}).status_code == 201
    error = error_of(client.post(url, json={**row, "metadata": {"a": [1, 2, 3]}}), 422)
    assert "holds 4 JSON values; the limit is 3" in error["details"]["fields"]["metadata"]
    error = error_of(client.post(url, json=[{**row, "metadata": {"a": "x" * 40}}]), 422)
    assert "the limit is 40 bytes" in error["details"]["fields"]["[0].metadata"]


def test_a_body_with_too_many_values_is_refused_before_it_is_parsed(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(SWARM_MAX_REQUEST_VALUES=1000)
    client = app.test_client()
    _seed(client)
    parsed: list[str] = []
    real_loads = app.json.loads
    monkeypatch.setattr(
        app.json, "loads", lambda s, **kw: parsed.append("x") or real_loads(s, **kw)
    )
    body = {"agent_type": "a", "message": "m", "metadata": {"a": [{}] * 2000}}
    response = client.post("/api/tasks/1/logs", json=body)
    assert parsed == []  # (reading the answer below parses that)
    error = error_of(response, 413)
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit"] == "SWARM_MAX_REQUEST_VALUES"
    assert error["details"]["limit_values"] == 1000
    assert error["details"]["field"] == "metadata.a"
    assert "metadata.a" in error["message"] and "SWARM_MAX_REQUEST_VALUES" in error["message"]
    assert client.get("/api/tasks/1/logs").get_json()["items"] == []
    # At the limit it is parsed and judged by the per-field limits.
    body["metadata"] = {"a": [{}] * 990}
    assert client.post("/api/tasks/1/logs", json=body).status_code == 201


def test_the_default_body_limit_admits_a_full_batch() -> None:
    """A batch of MAX_BATCH records, each with the metadata RemoteLogHandler writes plus a
    dozen entries of the agent's own, fits SWARM_MAX_REQUEST_VALUES's default."""
    record = {
        "agent_type": "writer",
        "message": "did a step",
        "log_level": "info",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "agent_id": 3,
        "session_id": "s-1",
        "metadata": {
            "logger": "agent",
            "level_name": "INFO",
            "module": "m",
            "function": "f",
            "line": 12,
            **{f"k{i}": i for i in range(12)},
        },
    }
    values = count_values(json.dumps([record] * MAX_BATCH).encode())
    assert values <= Settings.model_fields["max_request_values"].default
