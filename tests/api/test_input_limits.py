"""Inputs that used to cost a 500: timestamps outside what a datetime holds once in UTC."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

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
