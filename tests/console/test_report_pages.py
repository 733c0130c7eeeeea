"""The Reports page and the overview's charts: each chart's table says the store's figures,
its bars link to listings that count the same, no inline style or script (the CSP), and a
bad range is a 422 page."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlparse

import pytest
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.db import utcnow
from swarm_director.schemas.reports import ReportQuery
from swarm_director.seeding.demo import seed_demo
from swarm_director.seeding.past_week import grow_past
from swarm_director.store import reports
from swarm_director.web.context import database
from tests.console.test_pages import links, page


class _Charts(HTMLParser):
    """Each figure's bars (class, link, tooltip) and its table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, list]] = {}
        self._current: str | None = None
        self._href: str | None = None
        self._in_row = False
        self._cell: list[str] | None = None
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "figure":
            self._current = named["id"]
            self.charts[self._current] = {"bars": [], "rows": []}
        elif self._current is None:
            return
        elif tag == "a":
            self._href = named.get("href")
        elif tag == "rect" and "bar" in (named.get("class") or ""):
            self.charts[self._current]["bars"].append([named["class"], self._href, ""])
        elif tag == "title" and self.charts[self._current]["bars"]:
            self._title = True
        elif tag == "tr":
            self._cell = []
        elif tag in ("td", "th") and self._cell is not None:
            self._cell.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._current = None
        elif tag == "a":
            self._href = None
        elif tag == "title":
            self._title = False
        elif tag == "tr" and self._cell is not None and self._current:
            self.charts[self._current]["rows"].append(self._cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._current is None:
            return
        if self._title:
            self.charts[self._current]["bars"][-1][2] += data
        elif self._cell:
            self._cell[-1] += data


def charts_of(html: str) -> dict[str, dict[str, list]]:
    parser = _Charts()
    parser.feed(html)
    return parser.charts


@pytest.fixture
def week(console_app: Flask) -> None:
    db = database(console_app)
    with db.transaction() as session:
        seed_demo(session)
    with db.transaction() as session:
        grow_past(session, 5, now=utcnow() - timedelta(minutes=5))


def test_the_reports_page_shows_the_store_s_figures(ui: FlaskClient, week: None) -> None:
    html = page(ui, "/ui/reports?range=7d")
    parsed = links(html)
    assert parsed.styles == 0 and parsed.inline_handlers == []
    assert [s.get("src") for s in parsed.scripts] == ["/ui/static/live.js"]
    charts = charts_of(html)
    assert set(charts) == {
        "chart-tasks",
        "chart-durations",
        "chart-agent-failures",
        "chart-type-failures",
        "chart-logs",
        "chart-emails",
        "chart-drafts",
    }
    window = reports.resolve(ReportQuery(since=utcnow() - timedelta(days=7), bucket="day"))
    with database(ui.application).statement_reads() as conn:
        counts = reports.task_counts(conn, window=window)
        volume = reports.log_volume(conn, window=window)
    (series,) = counts.series
    rows = charts["chart-tasks"]["rows"]
    assert rows[0] == ["bucket", "created", "completed", "failed"]
    assert [[int(v) for v in row[1:]] for row in rows[1:]] == [
        list(day) for day in zip(series.created, series.completed, series.failed, strict=True)
    ]
    log_rows = charts["chart-logs"]["rows"][1:]
    assert [int(row[4]) for row in log_rows] == volume.levels["error"]
    # one bar per non-zero number, each with its number in its tooltip
    bars = charts["chart-tasks"]["bars"]
    assert len(bars) == sum(1 for n in (*series.created, *series.completed, *series.failed) if n)
    assert all(re.search(r": \d+ (created|completed|failed)$", title) for _c, _h, title in bars)


def test_a_bar_links_to_the_listing_of_what_it_counts(ui: FlaskClient, week: None) -> None:
    charts = charts_of(page(ui, "/ui/reports?range=7d"))
    completed = [b for b in charts["chart-tasks"]["bars"] if "c-completed" in b[0]]
    counted = 0
    for _css, href, title in completed:
        n = int(re.search(r": (\d+) completed", title).group(1))
        query = parse_qs(urlparse(href).query)
        assert urlparse(href).path == "/ui/activity"
        assert query["action"] == ["complete"] and query["entity"] == ["task"]
        if n < 50:  # one page of the listing: count its rows
            listing = page(ui, href)
            assert listing.count("<tr>") - 1 == n, href
            counted += 1
    assert counted or completed
    errors = [b for b in charts["chart-logs"]["bars"] if "c-error" in b[0]]
    assert errors
    for _css, href, title in errors:
        n = int(re.search(r": (\d+) error", title).group(1))
        assert urlparse(href).path == "/ui/logs"
        listing = page(ui, href)
        assert listing.count('class="badge s-error"') == n, href


def test_the_overview_has_the_last_24_hours(ui: FlaskClient, week: None) -> None:
    charts = charts_of(page(ui, "/ui/"))
    assert set(charts) == {"chart-tasks-small", "chart-logs-small"}
    assert len(charts["chart-tasks-small"]["rows"]) - 1 in (24, 25)


def test_time_zone_and_ranges(ui: FlaskClient, week: None) -> None:
    html = page(ui, "/ui/reports?range=30d&tz=Asia/Kolkata")
    rows = charts_of(html)["chart-tasks"]["rows"]
    assert all(row[0].endswith("+05:30") for row in rows[1:])
    assert len(rows) - 1 in (30, 31)
    page(ui, "/ui/reports?range=99d", status=422)
    assert "IANA" in page(ui, "/ui/reports?tz=Nowhere/City", status=422)


def test_an_empty_database_says_so(ui: FlaskClient) -> None:
    html = page(ui, "/ui/reports")
    assert html.count("Nothing in this range.") >= 5
    assert "No errors in this range." in html
