"""Property-based contract test: schemathesis drives every operation of /api/openapi.json.

For each operation it generates requests from the schema (plus the coverage phase's edge
cases) and checks that no response is a 5xx, and that status codes, content types and bodies
conform to the document. A few seeded rows make the generated ids hit real rows sometimes.
The number of examples per operation is bounded so the run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from swarm_director import create_app
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.web.context import database
from tests.api.conftest import SHORT_STREAMS, url_text
from tests.dbtools import fresh_database

TOKEN = "contract-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _seed(app: Flask) -> None:
    client = app.test_client()

    def post(url: str, body: Any) -> None:
        response = client.post(url, json=body, headers=AUTH)
        assert response.status_code == 201, response.get_json()

    post("/api/agents", {"name": "director", "agent_type": "supervisor"})
    post("/api/tasks", {"type": "email_draft", "title": "seed"})
    post("/api/tasks/1/logs", [{"agent_type": "director", "message": "hi"}])
    post("/api/tasks/1/drafts", {"content": "v1"})
    post("/api/tasks/1/emails", {"recipient": "a@b.example", "subject": "s", "body": "b"})
    post("/api/conversations", {"title": "seed"})
    post("/api/conversations/1/participants", {"agent_id": 1})
    post("/api/conversations/1/messages", {"content": "hello", "sender_agent_id": 1})


def _document() -> dict[str, Any]:
    # Generating the document needs no database; the tests below run against a real one.
    app = create_app({"DATABASE_URL": "sqlite://", "SWARM_API_TOKEN": None})
    try:
        document: dict[str, Any] = app.test_client().get("/api/openapi.json").get_json()
    finally:
        database(app).dispose()
    return document


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """One seeded app per dialect for the whole module: building and seeding one per
    operation would cost more than the generated requests themselves."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    tmp = tmp_path_factory.mktemp("contract")
    with fresh_database(request.param, tmp) as url:
        engine = make_engine(url, create_dirs=True)
        migrate.upgrade(engine)
        engine.dispose()
        config = {"DATABASE_URL": url_text(url), "SWARM_API_TOKEN": TOKEN, **SHORT_STREAMS}
        app = create_app({**config, "SWARM_DATA_DIR": str(tmp / "data")})
        try:
            _seed(app)
            yield app
        finally:
            database(app).dispose()


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_the_contract(case: Any, seeded_app: Flask) -> None:
    case.call_and_validate(app=seeded_app, headers=AUTH, checks=CHECKS)
