"""`swarm-director report ...`: the store's figures as JSON, CSV and a table; bad options are
one line and a non-zero exit; and `db seed --past` grows a week that the reports see."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database, make_engine
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import reports
from tests.dbtools import fresh_database
from tests.store.reports_swarm import START, build

SINCE = START.isoformat()
UNTIL = (START + timedelta(hours=48)).isoformat()


@pytest.fixture
def url(dialect: str, tmp_path: Path):
    with fresh_database(dialect, tmp_path) as fresh:
        text = fresh.render_as_string(hide_password=False)
        assert CliRunner().invoke(cli, ["db", "init", "--database-url", text]).exit_code == 0
        yield text


def _run(url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["report", *args, "--database-url", url])
    assert result.exit_code == 0, result.output
    return result.output


def test_json_csv_and_table_say_what_the_store_computes(url: str) -> None:
    database = Database(make_engine(url))
    try:
        build(database, n_tasks=30)
        query = ReportQuery(since=START, until=START + timedelta(hours=48), bucket="day", by="type")
        with database.statement_reads() as conn:
            expected = reports.task_counts(conn, query)
            failures = reports.failures(conn, query)
    finally:
        database.dispose()
    span = ("--since", SINCE, "--until", UNTIL, "--bucket", "day")
    as_json = json.loads(_run(url, "tasks", *span, "--by", "type", "--json"))
    assert as_json == expected.model_dump(mode="json")

    rows = list(csv.DictReader(io.StringIO(_run(url, "tasks", *span, "--by", "type", "--csv"))))
    for series in expected.series:
        mine = [r for r in rows if r["type"] == series.label]
        assert sum(int(r["created"]) for r in mine) == sum(series.created)
        assert sum(int(r["failed"]) for r in mine) == sum(series.failed)

    table = _run(url, "tasks", *span)
    totals = expected.totals
    assert f"{totals['created']} created, {totals['completed']} completed" in table
    assert table.count("\n") == 1 + 1 + 3  # caption, header, three days (one of them 0)

    agents = list(csv.DictReader(io.StringIO(_run(url, "agents", *span, "--csv"))))
    by_agent = {r["name"]: r for r in agents if r["by"] == "agent"}
    for row in failures.by_agent:
        assert int(by_agent[row.label]["failed"]) == row.failed
    errors = _run(url, "errors", *span)
    assert failures.errors[0].pattern in errors
    for command in ("durations", "logs", "emails", "drafts"):
        assert json.loads(_run(url, command, *span, "--json"))["range"]["bucket"] == "day"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "--since", "yesterday"], "neither a duration"),
        (["tasks", "--since", "3d", "--bucket", "minute"], "minute buckets"),
        (["tasks", "--tz", "Mars/Base", "--bucket", "day"], "IANA"),
        (["tasks", "--since", "1h", "--until", "2h"], "before until"),
        (["logs", "--tz", "Europe/Berlin", "--bucket", "hour"], "day buckets only"),
        (["tasks", "--by", "colour"], "colour"),
    ],
)
def test_bad_options_are_one_line_and_fail(url: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["report", *args, "--database-url", url])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_seed_past_grows_a_week_the_reports_see_once(url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "seed", "--past", "7d", "--json", "--database-url", url])
    assert first.exit_code == 0, first.output
    grown = json.loads(first.output)["past"]
    assert grown["tasks"] > 200 and grown["agent_logs"] > grown["tasks"]
    again = runner.invoke(cli, ["db", "seed", "--past", "7d", "--database-url", url])
    assert "Past work already present" in again.output
    week = json.loads(_run(url, "tasks", "--since", "8d", "--bucket", "day", "--json"))
    assert week["totals"]["created"] == grown["tasks"] + 4  # and the demo's own four
    assert week["totals"]["failed"] > 0
    days = week["series"][0]["created"]
    assert sum(1 for n in days if n) >= 7  # spread over the week
    durations = json.loads(_run(url, "durations", "--since", "8d", "--json"))
    assert {row["type"] for row in durations["types"]} == {
        "analysis",
        "communication",
        "document_review",
        "email_draft",
    }
    assert sum(row["retries"] for row in durations["types"]) > 0
    bad = runner.invoke(cli, ["db", "seed", "--past", "90d", "--database-url", url])
    assert bad.exit_code != 0 and "1h to 62d" in bad.output
