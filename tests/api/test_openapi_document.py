"""The OpenAPI document passes a standard validator, so generated clients and tools accept it."""

from __future__ import annotations

import importlib
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


#: Operations whose client methods and store functions have other names, and what they are.
#: Every other operation id is a `Client` method and a store function of the same name.
_OTHER_NAMES: dict[str, tuple[set[str], set[str]]] = {
    "health": ({"health"}, set()),  # no data: answered by the app
    "ready": ({"ready"}, set()),  # ops.dbinfo, not the store
    "admin_stats": ({"admin_stats"}, set()),  # ops.stats, not the store
    # one endpoint takes a record or a batch; the client and the store split the two
    "add_task_logs": ({"add_log", "add_logs"}, {"add_log", "add_logs"}),
    # a task's list is the cross-task list with task_id / entity set
    "list_task_logs": ({"list_task_logs"}, {"list_logs"}),
    "list_task_emails": ({"list_task_emails"}, {"list_emails"}),
    **{
        f"list_{kind}_history": ({f"list_{kind}_history"}, {"list_history"})
        for kind in ("task", "agent", "draft", "email", "conversation")
    },
    # the live tail: the client follows a stream, the store's LogFollower polls
    "stream_logs": ({"follow_logs"}, {"LogFollower"}),
    "stream_task_logs": ({"follow_logs"}, {"LogFollower"}),
    # reports: the store's functions say what they compute
    "report_tasks": ({"report_tasks"}, {"task_counts"}),
    "report_durations": ({"report_durations"}, {"durations"}),
    "report_failures": ({"report_failures"}, {"failures"}),
    "report_logs": ({"report_logs"}, {"log_volume"}),
    "report_emails": ({"report_emails"}, {"email_outcomes"}),
    "report_drafts": ({"report_drafts"}, {"draft_approvals"}),
    # a file download: the client writes it to a file; the store prepares the export and
    # streams its text
    "export_logs": ({"export_logs"}, {"prepare_export", "text_chunks"}),
}


def _store_names() -> set[str]:
    names = "agents conversations drafts emails export history log_stream logs queue reports tasks"
    modules = [importlib.import_module(f"swarm_director.store.{name}") for name in names.split()]
    return {name for module in modules for name in vars(module) if not name.startswith("_")}


def test_every_operation_has_one_name_in_the_api_the_client_and_the_store(
    document: dict[str, Any],
) -> None:
    from swarm_director.client import AsyncClient, Client

    store = _store_names()
    operations = [
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(operations) > 40
    unmatched = []
    for name in operations:
        client_names, store_names = _OTHER_NAMES.get(name, ({name}, {name}))
        for names, where in ((client_names, dir(Client)), (client_names, dir(AsyncClient))):
            unmatched += [f"{name}: client {n}" for n in names if n not in where]
        unmatched += [f"{name}: store {n}" for n in store_names if n not in store]
    assert unmatched == []
