"""The app as a whole: health, readiness, stats, OpenAPI, auth, error shapes, unit of work."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from swarm_director.migrations import migrate
from swarm_director.models import Agent
from swarm_director.ops.stats import timings, timings_table
from swarm_director.web.context import database, session
from tests.api.conftest import AppFactory, url_text
from tests.api.helpers import error_of, make_agent


def test_health_answers_without_touching_the_database(make_app: AppFactory) -> None:
    app = make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/api/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_ready_is_503_until_the_schema_is_at_head(behind_head_url: URL) -> None:
    from swarm_director import create_app

    app = create_app({"DATABASE_URL": url_text(behind_head_url), "SWARM_API_TOKEN": None})
    try:
        error = error_of(app.test_client().get("/api/ready"), 503)
    finally:
        database(app).dispose()
    assert error["code"] == "schema_behind"
    assert "swarm-director db upgrade" in error["message"]
    assert error["details"]["head"] == migrate.head_revision()
    assert error["details"]["revision"] == migrate.history()[-2].revision


def test_ready_is_200_on_a_migrated_database(client: FlaskClient) -> None:
    response = client.get("/api/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["revision"] == migrate.head_revision()


def test_ready_is_503_when_the_database_is_unreachable(make_app: AppFactory) -> None:
    app = make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/api/ready")
    error = error_of(response, 503)
    assert error["code"] == "unavailable"
    assert "127.0.0.1" not in error["message"]
    assert response.headers["Retry-After"] == "1"


def test_a_request_without_a_database_is_503_with_retry_after(make_app: AppFactory) -> None:
    """What a client sees while the database is away (a restart, a failover): a short wait."""
    app = make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().post("/api/tasks", json={"type": "analysis", "title": "t"})
    assert error_of(response, 503)["code"] == "unavailable"
    assert response.headers["Retry-After"] == "1"


def test_openapi_document_is_generated_with_spec_field_names(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/api/agents",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/subtasks",
        "/api/tasks/{task_id}/logs",
        "/api/logs",
        "/api/health",
        "/api/ready",
        "/api/admin/stats",
    ):
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    log_fields = schemas["LogOut"]["properties"]
    assert {"metadata", "log_level", "agent_type", "session_id", "timestamp"} <= set(log_fields)
    assert "meta" not in log_fields
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    # Errors are documented in the one shape, not flask-openapi3's default list.
    tasks_422 = paths["/api/tasks"]["post"]["responses"]["422"]
    assert tasks_422["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


# -- auth ------------------------------------------------------------------------------------


SECURED_TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def secured(make_app: AppFactory) -> FlaskClient:
    return make_app(SWARM_API_TOKEN=SECURED_TOKEN).test_client()


def test_auth_on_requires_the_bearer_token(secured: FlaskClient) -> None:
    error = error_of(secured.get("/api/tasks"), 401)
    assert error["code"] == "unauthorized"
    assert secured.get("/api/tasks").headers["WWW-Authenticate"].startswith("Bearer")
    error_of(secured.get("/api/tasks", headers={"Authorization": "Bearer wrong"}), 401)
    error_of(secured.get("/api/tasks", headers={"Authorization": f"Basic {SECURED_TOKEN}"}), 401)
    error_of(secured.get("/api/openapi.json"), 401)
    error_of(secured.get("/api/ready"), 401)
    # Writes are refused before the body is even looked at.
    error_of(secured.post("/api/tasks", data="not json"), 401)
    ok = secured.get("/api/tasks", headers={"Authorization": f"Bearer {SECURED_TOKEN}"})
    assert ok.status_code == 200


def test_auth_on_leaves_health_open(secured: FlaskClient) -> None:
    assert secured.get("/api/health").status_code == 200


def test_auth_off_needs_no_header(client: FlaskClient) -> None:
    assert client.get("/api/tasks").status_code == 200


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch, db_url: URL) -> None:
    from swarm_director import create_app

    monkeypatch.setenv("SWARM_API_TOKEN", "from-env-0123456789")
    app = create_app({"DATABASE_URL": url_text(db_url)})
    try:
        client = app.test_client()
        assert client.get("/api/tasks").status_code == 401
        ok = client.get("/api/tasks", headers={"Authorization": "Bearer from-env-0123456789"})
        assert ok.status_code == 200
    finally:
        database(app).dispose()


# -- error shapes ----------------------------------------------------------------------------


def test_unknown_route_is_404_in_the_error_shape(client: FlaskClient) -> None:
    assert error_of(client.get("/api/nothing-here"), 404)["code"] == "not_found"


def test_missing_row_is_404_naming_it(client: FlaskClient) -> None:
    error = error_of(client.get("/api/tasks/424242"), 404)
    assert "424242" in error["message"]


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.put("/api/tasks", json={})
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_non_json_body_is_415(client: FlaskClient) -> None:
    error = error_of(client.post("/api/tasks", data="title=x"), 415)
    assert error["code"] == "unsupported_media_type"
    response = client.post("/api/tasks", data="{}", content_type="text/plain")
    error_of(response, 415)


def test_malformed_json_is_400(client: FlaskClient) -> None:
    for body in ("{", "", "[1,", b"\xff\xfe"):
        response = client.post("/api/tasks", data=body, content_type="application/json")
        assert error_of(response, 400)["code"] == "bad_request"


def test_deeply_nested_json_is_400_not_500(client: FlaskClient) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/tasks", data=body, content_type="application/json")
    error_of(response, 400)


def test_body_over_the_limit_is_413_before_parsing(make_app: AppFactory) -> None:
    client = make_app(SWARM_MAX_REQUEST_BYTES=1000).test_client()
    big = '{"type": "analysis", "title": "' + "x" * 2000 + '"}'
    error = error_of(client.post("/api/tasks", data=big, content_type="application/json"), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit_bytes"] == 1000
    # Not JSON and too large: the size is checked first, the body never read.
    error_of(client.post("/api/tasks", data="x" * 5000, content_type="text/plain"), 413)


def test_chunked_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    # No Content-Length: the capped stream stops reading at the limit.
    client = make_app(SWARM_MAX_REQUEST_BYTES=1000).test_client()
    response = client.post(
        "/api/tasks",
        input_stream=io.BytesIO(b'["' + b"x" * 5000 + b'"]'),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    error_of(response, 413)


def test_invalid_fields_are_422_each_named(client: FlaskClient) -> None:
    response = client.post(
        "/api/tasks",
        json={"type": "haiku", "title": "", "priority": 7, "surprise": True},
    )
    error = error_of(response, 422)
    assert error["code"] == "validation_error"
    assert set(error["details"]["fields"]) == {"type", "title", "priority", "surprise"}
    for name in ("type", "title", "priority", "surprise"):
        assert name in error["message"]


def test_invalid_query_parameters_are_422(client: FlaskClient) -> None:
    error = error_of(client.get("/api/tasks?limit=1001&status=done"), 422)
    assert set(error["details"]["fields"]) == {"limit", "status"}
    error = error_of(client.get("/api/tasks?limit=abc"), 422)
    assert "limit" in error["details"]["fields"]


def test_out_of_range_ids_are_refused_not_crashing(client: FlaskClient) -> None:
    huge = 2**70
    error_of(client.get(f"/api/tasks/{huge}"), 422)
    error_of(client.get(f"/api/tasks?assigned_agent_id={huge}"), 422)
    error_of(
        client.post("/api/tasks", json={"type": "analysis", "title": "t", "parent_task_id": huge}),
        422,
    )
    # In BIGINT range but beyond any row: a clean 4xx on both dialects.
    response = client.post(
        "/api/tasks", json={"type": "analysis", "title": "t", "parent_task_id": 2**62}
    )
    assert response.status_code in (404, 422), response.get_json()


def test_values_the_database_cannot_store_are_4xx(client: FlaskClient) -> None:
    # PostgreSQL refuses NUL in text and ids beyond INTEGER; SQLite stores the former.
    attempts = [
        client.post("/api/tasks", json={"type": "analysis", "title": "a\u0000b"}),
        client.get("/api/tasks?user_id=a%00b"),
        client.post(
            "/api/tasks", json={"type": "analysis", "title": "t", "assigned_agent_id": 2**40}
        ),
    ]
    for response in attempts:
        assert response.status_code < 500, response.get_json()
        if response.status_code >= 400:
            error_of(response, response.status_code)
            assert "SELECT" not in response.get_data(as_text=True)


def test_unexpected_errors_are_500_without_internals(make_app: AppFactory) -> None:
    app = make_app()

    @app.get("/api/boom")
    def boom() -> str:
        raise RuntimeError("SELECT secret FROM internals")

    response = app.test_client().get("/api/boom")
    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    text = response.get_data(as_text=True)
    assert "SELECT" not in text and "Traceback" not in text and "RuntimeError" not in text


# -- unit of work ----------------------------------------------------------------------------


def _count_agents(app: Flask) -> int:
    with database(app).read() as s:
        return int(s.scalar(select(func.count()).select_from(Agent)) or 0)


def test_a_failing_request_rolls_back_everything_it_wrote(make_app: AppFactory) -> None:
    app = make_app()

    @app.post("/api/half-done")
    def half_done() -> str:
        session().add(Agent(name="ghost", agent_type="worker"))
        session().flush()
        raise RuntimeError("fails after writing")

    error_of(app.test_client().post("/api/half-done", json={}), 500)
    assert _count_agents(app) == 0


def test_an_error_response_rolls_back_too(make_app: AppFactory) -> None:
    app = make_app()

    @app.post("/api/refused")
    def refused() -> tuple[str, int]:
        session().add(Agent(name="ghost", agent_type="worker"))
        session().flush()
        return "no", 409

    assert app.test_client().post("/api/refused", json={}).status_code == 409
    assert _count_agents(app) == 0


def test_a_successful_write_is_committed_once(client: FlaskClient, app: Flask) -> None:
    make_agent(client, "kept")
    assert _count_agents(app) == 1


def test_the_data_layer_imports_no_flask() -> None:
    """Agents use the store and the logging bridge without Flask (a fresh interpreter)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import swarm_director, swarm_director.agent_logging\n"
        "for name in ('db', 'models', 'schemas', 'store', 'ops'):\n"
        "    package = importlib.import_module('swarm_director.' + name)\n"
        "    for module in pkgutil.iter_modules(package.__path__):\n"
        "        importlib.import_module(f'swarm_director.{name}.{module.name}')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_statement_timings_are_on_by_default_and_reach_admin_stats(make_app: Any) -> None:
    """The service records its slowest statement shapes in the database; /api/admin/stats
    lists them with the process that ran them."""
    app = make_app()
    client = app.test_client()
    assert client.get("/api/tasks?status=pending").status_code == 200
    recorder = timings._INSTALLED[database(app).engine.dialect]
    assert recorder.flush()  # the service's flusher thread does this every 30 s
    stats = client.get("/api/admin/stats").get_json()
    [tasks] = [s for s in stats["slow_statements"] if "FROM tasks" in s["shape"]]
    assert tasks["count"] == 1 and tasks["sources"] == [timings_table.source_name()]
