"""Reports over HTTP: the same figures as the store's, a bad range refused with the field
named, and every report in the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import reports
from swarm_director.web.context import database
from tests.store.reports_swarm import START, build

SINCE = START.isoformat()
UNTIL = (START + timedelta(hours=48)).isoformat()
REPORTS = ("tasks", "durations", "failures", "logs", "emails", "drafts")


def test_each_report_answers_what_the_store_computes(client: FlaskClient) -> None:
    db = database(client.application)
    build(db, n_tasks=30)
    query = ReportQuery(since=START, until=START + timedelta(hours=48), bucket="hour", by="agent")
    with db.statement_reads() as conn:
        expected = {
            "tasks": reports.task_counts(conn, query),
            "durations": reports.durations(conn, query),
            "failures": reports.failures(conn, query),
            "logs": reports.log_volume(conn, query),
            "emails": reports.email_outcomes(conn, query),
            "drafts": reports.draft_approvals(conn, query),
        }
    for name in REPORTS:
        answer = client.get(
            f"/api/reports/{name}", query_string={"since": SINCE, "until": UNTIL, "by": "agent"}
        )
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == expected[name].model_dump(mode="json"), name
    tasks = client.get(
        "/api/reports/tasks", query_string={"since": SINCE, "until": UNTIL, "by": "agent"}
    ).get_json()
    assert sum(sum(s["created"]) for s in tasks["series"]) == 30
    assert {s["label"] for s in tasks["series"]} <= {"alpha", "beta", "gamma", "unassigned"}


def test_the_default_range_is_the_last_24_hours_by_hour(client: FlaskClient) -> None:
    body = client.get("/api/reports/logs").get_json()
    assert body["range"]["bucket"] == "hour"
    assert len(body["range"]["buckets"]) in (24, 25)
    assert body["totals"] == {"debug": 0, "info": 0, "warning": 0, "error": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": "week"}, "bucket"),
        ({"tz": "Mars/Base"}, "tz"),
        ({"since": "yesterday"}, "since"),
        ({"since": UNTIL, "until": SINCE}, "since"),
        (
            {"bucket": "minute", "since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"},
            "bucket",
        ),
        ({"tz": "Europe/Berlin"}, "tz"),
        ({"by": "colour"}, "by"),
    ],
)
def test_a_bad_query_is_422_naming_the_field(
    client: FlaskClient, params: dict[str, str], field: str
) -> None:
    answer = client.get("/api/reports/tasks", query_string=params)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["error"]["details"]["fields"]


def test_every_report_is_in_the_openapi_document(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    for name in REPORTS:
        operation = document["paths"][f"/api/reports/{name}"]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"since", "until", "bucket", "tz", "by"} <= names
        assert "200" in operation["responses"]
