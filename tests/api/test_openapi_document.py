"""The OpenAPI document passes a standard validator, so generated clients and tools accept it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from swarm_director import create_app
from swarm_director.web.context import database


@pytest.fixture(scope="module")
def document() -> Iterator[dict[str, Any]]:
    # Generating the document needs no database (the app only connects on a request that
    # reads data), so one in-memory SQLite URL serves both dialects.
    app = create_app({"DATABASE_URL": "sqlite://", "SWARM_API_TOKEN": None, "TESTING": True})
    try:
        response = app.test_client().get("/api/openapi.json")
        assert response.status_code == 200
        doc: dict[str, Any] = response.get_json()
        yield doc
    finally:
        database(app).dispose()


def test_document_validates_with_openapi_spec_validator(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_patch_fields_document_no_null_default(document: dict[str, Any]) -> None:
    # PATCH bodies: a field that refuses null is optional without a default; a field that may
    # be cleared keeps null in its type and as its default.
    task_update = document["components"]["schemas"]["TaskUpdate"]
    title, status = task_update["properties"]["title"], task_update["properties"]["status"]
    assert "default" not in title and title["type"] == "string"
    assert "default" not in status and status["$ref"].endswith("/TaskStatus")
    assert "title" not in task_update.get("required", [])
    assignee = task_update["properties"]["assigned_agent_id"]
    assert assignee["default"] is None
    assert {"type": "null"} in assignee["anyOf"]
