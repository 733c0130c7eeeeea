"""``GET /api/export/logs``: the log list's rows, filters and order as JSON lines or CSV, read
back by DuckDB; resumed by cursor; bad input a 422 before anything streams; a read key
suffices; and a bounded number of exports per key and process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.models import ApiScope
from swarm_director.schemas.export import ExportKind
from swarm_director.schemas.logs import LogOut
from swarm_director.store import export
from swarm_director.store import keys as key_store
from swarm_director.web.context import database
from tests.api.conftest import AppFactory
from tests.api.helpers import all_pages, error_of, make_task
from tests.export_reading import read_back

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TOKEN = "export-test-bootstrap-token-0123456789abcdef"


def _seed(client: FlaskClient) -> list[int]:
    tasks = [make_task(client, f"task {n}")["id"] for n in range(2)]
    for n, task_id in enumerate(tasks):
        batch = [
            {
                "agent_type": "writer",
                "message": f'line {i}, "quoted"\nand more' if i % 5 == 0 else f"line {i}",
                "log_level": ["info", "warning", "error"][i % 3],
                # out of id order in time
                "timestamp": (T0 + timedelta(minutes=(i * 7 + n) % 50)).isoformat(),
                "metadata": {"i": i, "tags": ["a", "b"]} if i % 2 else None,
            }
            for i in range(25)
        ]
        response = client.post(f"/api/tasks/{task_id}/logs", json=batch)
        assert response.status_code == 201, response.get_json()
    return tasks


def client_with(client: FlaskClient, headers: dict[str, str]) -> FlaskClient:
    """``client`` sending ``headers`` with every request."""
    client.environ_base.update(
        {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    )
    return client


def _listed(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    """The same rows through the log list (oldest first), in Python values."""
    items = all_pages(client, f"/api/logs?order=asc{query}", limit=7)
    return [LogOut.model_validate(item).model_dump(by_alias=True) for item in items]


def _exported(response: Any, fmt: str, tmp_path: Path) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    media = {"jsonl": "application/x-ndjson", "csv": "text/csv"}[fmt]
    assert response.mimetype == media
    assert response.headers["Content-Disposition"] == f'attachment; filename="logs.{fmt}"'
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.{fmt}"
    path.write_bytes(response.get_data())
    return read_back(path, fmt, export.export_fields(ExportKind.LOGS))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_export_is_the_log_list_oldest_first(
    client: FlaskClient, tmp_path: Path, fmt: str
) -> None:
    _seed(client)
    expected = _listed(client)
    assert len(expected) == 50
    got = _exported(client.get(f"/api/export/logs?format={fmt}"), fmt, tmp_path)
    assert got == expected


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_filters_are_the_log_list_s(client: FlaskClient, tmp_path: Path, fmt: str) -> None:
    tasks = _seed(client)
    since = (T0 + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    query = f"&level=warning&task_id={tasks[1]}&since={since}&q=quoted"
    expected = _listed(client, query)
    assert 0 < len(expected) < 10
    got = _exported(client.get(f"/api/export/logs?format={fmt}{query}"), fmt, tmp_path)
    assert got == expected


def test_a_broken_download_resumes_after_the_last_row(client: FlaskClient, tmp_path: Path) -> None:
    _seed(client)
    expected = _listed(client, "&level=error")
    body = client.get("/api/export/logs?level=error").get_data(as_text=True)
    received = body[: len(body) // 2]  # the connection broke mid-line
    complete = received[: received.rindex("\n") + 1].splitlines()
    last_id = LogOut.model_validate_json(complete[-1]).id
    rest = client.get(f"/api/export/logs?level=error&cursor={last_id}")
    got = _exported(rest, "jsonl", tmp_path)
    assert len(complete) + len(got) == len(expected)
    assert got == expected[len(complete) :]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=parquet", "format"),
        ("format=", "format"),
        ("since=yesterday", "since"),
        ("until=1700000000", "until"),
        ("level=loud", "level"),
        ("task_id=0", "task_id"),
        ("cursor=0", "cursor"),
        ("cursor=abc", "cursor"),
        ("cursor=99999999", "cursor"),  # no such log: where would it resume?
        ("q=%21%21", "q"),
    ],
)
def test_bad_input_is_422_naming_the_field(client: FlaskClient, query: str, field: str) -> None:
    _seed(client)
    error = error_of(client.get(f"/api/export/logs?{query}"), 422)
    assert field in error["details"]["fields"], error


def test_a_missing_task_is_404(client: FlaskClient) -> None:
    error_of(client.get("/api/export/logs?task_id=4242"), 404)


def test_an_empty_export_is_an_empty_body_or_only_the_header(client: FlaskClient) -> None:
    task_id = make_task(client)["id"]
    assert client.get(f"/api/export/logs?task_id={task_id}").get_data() == b""
    header = client.get(f"/api/export/logs?task_id={task_id}&format=csv").get_data(as_text=True)
    assert header == ",".join(f.name for f in export.export_fields(ExportKind.LOGS)) + "\n"


def _key(app: Flask, name: str, scope: ApiScope = ApiScope.READ) -> dict[str, str]:
    with database(app).transaction() as session:
        token = key_store.create_key(session, name, scope).token
    app.extensions["swarm_director"].auth.checked_at = float("-inf")  # keys exist now
    return {"Authorization": f"Bearer {token}"}


def test_a_read_key_exports_and_no_key_is_401(make_app: AppFactory) -> None:
    app = make_app(SWARM_API_TOKEN=TOKEN)
    client = app.test_client()
    reader = _key(app, "reader")
    assert client.get("/api/export/logs", headers=reader).status_code == 200
    error_of(client.get("/api/export/logs"), 401)


def test_one_key_cannot_take_every_export(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 2)  # a body of many chunks: it stays open
    app = make_app(SWARM_API_TOKEN=TOKEN, SWARM_EXPORT_MAX_CLIENTS=2, SWARM_EXPORT_MAX_PER_KEY=1)
    client = app.test_client()
    _seed(client_with(client, {"Authorization": f"Bearer {TOKEN}"}))
    greedy, other, third = _key(app, "greedy"), _key(app, "other"), _key(app, "third")
    running = client.get("/api/export/logs", headers=greedy, buffered=False)
    assert running.status_code == 200
    refused = client.get("/api/export/logs", headers=greedy)
    error = error_of(refused, 429)
    assert "SWARM_EXPORT_MAX_PER_KEY" in error["message"] and "'greedy'" in error["message"]
    assert refused.headers["Retry-After"].isdigit()
    second = client.get("/api/export/logs", headers=other, buffered=False)
    assert second.status_code == 200
    full = error_of(client.get("/api/export/logs", headers=third), 503)
    assert "SWARM_EXPORT_MAX_CLIENTS=2" in full["message"]
    running.close()  # the client went away: its slot is free again
    second.close()
    for _ in range(2):  # a body read to its end gives its slot back too
        whole = client.get("/api/export/logs", headers=greedy).get_data()
        assert whole.count(b"\n") == 50


def test_the_document_lists_the_route_and_its_media_types(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/export/logs"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/x-ndjson", "text/csv"}
    names = {p["name"] for p in operation["parameters"]}
    assert {"format", "cursor", "level", "task_id", "since", "until", "q"} <= names
    assert operation["x-required-scope"] == "read"
