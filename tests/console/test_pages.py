"""Console pages through the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from swarm_director.db import utcnow
from swarm_director.models import MaintenanceOperation, MaintenanceStatus
from swarm_director.ops import audit
from swarm_director.store import logs
from swarm_director.web.context import database
from tests.console.conftest import HOSTILE, Counter, Swarm, fill


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self.styles: int = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "a" and named.get("href"):
            self.hrefs.append(named["href"] or "")
        if tag == "script":
            self.scripts.append(named)
        if tag == "style" or "style" in named:
            self.styles += 1
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]


def page(ui: FlaskClient, url: str, status: int = 200) -> str:
    response = ui.get(url)
    assert response.status_code == status, (url, response.status_code)
    assert response.mimetype == "text/html"
    body: str = response.get_data(as_text=True)
    assert len(response.data) < 200_000, f"{url} is {len(response.data)} bytes"
    return body


def links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def pages_of(swarm: Swarm) -> list[str]:
    return [
        "/ui/",
        "/ui/agents",
        f"/ui/agents/{swarm.worker}",
        f"/ui/agents/{swarm.director}",
        "/ui/tasks",
        f"/ui/tasks/{swarm.task}",
        f"/ui/tasks/{swarm.task}?diff_from=1&diff_to=2",
        f"/ui/tasks/{swarm.subtask}",
        "/ui/logs",
        "/ui/conversations",
        f"/ui/conversations/{swarm.conversation}",
        "/ui/ops",
    ]


def test_every_page_renders_hostile_text_as_text(ui: FlaskClient, swarm: Swarm) -> None:
    for url in pages_of(swarm):
        html = page(ui, url)
        parsed = links(html)
        # The only script is the console's own file; no markup came from the data.
        assert [s.get("src") for s in parsed.scripts] == ["/ui/static/live.js"], url
        assert parsed.inline_handlers == [], url
        assert parsed.styles == 0, url
        assert "<script>alert" not in html and "<img src=x" not in html, url


def test_hostile_text_is_shown_escaped(ui: FlaskClient, swarm: Swarm) -> None:
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    task_html = page(ui, f"/ui/tasks/{swarm.task}?diff_from=1&diff_to=2")
    assert f"Task {escaped}" in task_html  # title
    assert f"step 1 {escaped}" in task_html  # log message
    assert "&lt;img src=x onerror=alert(1)&gt;" in task_html  # metadata, draft, diff
    assert f"-{escaped}" in task_html  # the removed line of the diff
    convo = page(ui, f"/ui/conversations/{swarm.conversation}")
    assert f"Talk {escaped}" in convo and escaped in convo


def test_security_headers(ui: FlaskClient, swarm: Swarm) -> None:
    response = ui.get("/ui/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    static = ui.get("/ui/static/console.css")
    assert static.status_code == 200 and static.headers["X-Content-Type-Options"] == "nosniff"
    static.close()


def test_root_redirects_to_the_console(ui: FlaskClient) -> None:
    response = ui.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/ui/"


def test_every_id_links_to_its_page(ui: FlaskClient, swarm: Swarm) -> None:
    hrefs = links(page(ui, f"/ui/tasks/{swarm.task}")).hrefs
    assert f"/ui/tasks/{swarm.subtask}" in hrefs
    assert f"/ui/agents/{swarm.worker}" in hrefs
    assert f"/ui/conversations/{swarm.conversation}" not in hrefs  # task has no conversation_id
    assert f"/api/tasks/{swarm.task}" in hrefs  # the API call behind the page
    assert f"/ui/tasks/{swarm.task}" in links(page(ui, f"/ui/tasks/{swarm.subtask}")).hrefs
    agents_html = page(ui, "/ui/agents")
    assert f"/ui/agents/{swarm.worker}" in links(agents_html).hrefs
    convo = links(page(ui, f"/ui/conversations/{swarm.conversation}")).hrefs
    assert f"/ui/tasks/{swarm.task}" in convo and f"/ui/agents/{swarm.worker}" in convo
    # Every console link on every page leads to a page that renders.
    seen: set[str] = set()
    for url in pages_of(swarm):
        for href in links(page(ui, url)).hrefs:
            if href.startswith("/ui/") and "#" not in href and href not in seen:
                seen.add(href)
                response = ui.get(href)
                assert response.status_code == 200, (url, href)
                response.close()


def test_task_filters_come_from_the_query_string(ui: FlaskClient, swarm: Swarm) -> None:
    html = page(ui, "/ui/tasks?type=analysis")
    assert "Sub &lt;script" in html and "Task &lt;script" not in html
    assert "<option selected>analysis</option>" in html
    html = page(ui, f"/ui/tasks?assigned_agent_id={swarm.worker}")
    assert "Task &lt;script" in html and "Sub &lt;script" not in html
    assert "/api/tasks?assigned_agent_id=" in html


def test_log_filters_on_the_task_page(ui: FlaskClient, swarm: Swarm) -> None:
    html = page(ui, f"/ui/tasks/{swarm.task}?level=error")
    assert "step 2 " in html and "step 1 " not in html and "step 0 " not in html
    html = page(ui, f"/ui/tasks/{swarm.task}?session_id=s-1")
    assert "step 1 " in html and "step 0 " not in html
    assert f"/api/tasks/{swarm.task}/logs?session_id=s-1" in html


def test_bad_query_values_get_a_clear_page_not_a_500(ui: FlaskClient, swarm: Swarm) -> None:
    for url, words in [
        # Filters are checked by the API's rules and answered in its words.
        ("/ui/tasks?status=bogus", "status: Input should be &#39;pending&#39;"),
        ("/ui/tasks?assigned_agent_id=-1", "assigned_agent_id: Input should be greater than 0"),
        ("/ui/tasks?assigned_agent_id=99999999999999", "less than or equal to 2147483647"),
        ("/ui/logs?level=loud", "level: Input should be &#39;debug&#39;"),
        ("/ui/activity?since=yesterday", "since: Input should be a valid datetime"),
        ("/ui/tasks?after=not-a-cursor", "invalid cursor"),
        (f"/ui/tasks/{swarm.task}?before=x&after=y", "not both"),
        (f"/ui/tasks/{swarm.task}?diff_from=1&diff_to=9", "no draft version 9"),
        ("/ui/ops?operation=drop", "must be one of"),
        ("/ui/logs?session_id=" + "x" * 300, "at most"),
    ]:
        response = ui.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)
        assert words in response.get_data(as_text=True), url
        assert "Traceback" not in response.get_data(as_text=True)
    assert ui.get("/ui/tasks/424242").status_code == 404
    assert ui.get("/ui/agents/424242").status_code == 404
    assert ui.get("/ui/nothing-here").status_code == 404


def test_keyset_paging_older_and_newer(console_app: Flask, ui: FlaskClient, swarm: Swarm) -> None:
    db = database(console_app)
    with db.transaction() as s:
        now = utcnow()
        rows = [
            {"agent_type": "bulk", "message": f"bulk-{i:03d}", "timestamp": now.replace(year=2030)}
            for i in range(120)
        ]
        logs.add_logs(s, swarm.task, rows)
    first = page(ui, f"/ui/tasks/{swarm.task}")
    assert "bulk-119" in first and "bulk-070" in first and "bulk-069" not in first
    older_href = re.search(r'href="([^"]+)" rel="next"', first)
    assert older_href and 'rel="prev"' not in first
    second = page(ui, older_href.group(1).replace("&amp;", "&"))
    assert "bulk-069" in second and "bulk-020" in second and "bulk-119" not in second
    newer_href = re.search(r'href="([^"]+)" rel="prev"', second)
    assert newer_href
    back = page(ui, newer_href.group(1).replace("&amp;", "&"))
    assert "bulk-119" in back and "bulk-070" in back and "bulk-069" not in back
    # Newest first on the way back too.
    assert back.index("bulk-119") < back.index("bulk-070")


def test_ops_page_shows_the_audit_trail_filtered(console_app: Flask, ui: FlaskClient) -> None:
    engine = database(console_app).engine
    started = utcnow()
    audit.write_event(engine, MaintenanceOperation.BACKUP, MaintenanceStatus.OK, started, {})
    audit.write_event(
        engine, MaintenanceOperation.CHECK, MaintenanceStatus.FAILED, started, {"error": HOSTILE}
    )
    html = page(ui, "/ui/ops?operation=check")
    assert "&lt;script&gt;" in html and "<option selected>check</option>" in html
    assert ">backup</td>" not in html
    overview = page(ui, "/ui/")
    assert "&lt;script&gt;" in overview  # the last check's error, escaped


PAGES_TO_COUNT = ["/ui/", "/ui/agents", "/ui/tasks", "/ui/logs", "/ui/conversations", "/ui/ops"]


def test_no_query_per_row(
    console_app: Flask,
    ui: FlaskClient,
    count_statements: Callable[[Engine], Counter],
) -> None:
    """Statements per page do not grow with the number of rows shown (no N+1)."""
    db = database(console_app)
    small = fill(db, extra_tasks=0, logs_per_task=3)

    def counts(swarm: Swarm) -> dict[str, int]:
        out = {}
        urls = {url: url for url in PAGES_TO_COUNT}
        urls["task page"] = f"/ui/tasks/{swarm.task}"
        urls["agent page"] = f"/ui/agents/{swarm.worker}"
        urls["conversation page"] = f"/ui/conversations/{swarm.conversation}"
        for label, url in urls.items():
            counter.statements.clear()
            page(ui, url)
            out[label] = len(counter)
        return out

    counter = count_statements(db.engine)

    before = counts(small)
    # A second swarm puts many more rows on every page, and the first swarm's pages too.
    big = fill(db, extra_tasks=20, logs_per_task=12, name="-2")
    after = counts(small)
    assert after == before, (before, after)
    assert counts(big) == before
    # A fixed handful per page; the ops page runs `db stats` (a count per table), and the
    # overview's 24-hour charts read each rolled-up report's whole hours from its rollup and
    # the partial hours at either end from the rows (up to three statements each).
    assert max(v for k, v in before.items() if k not in ("/ui/ops", "/ui/")) <= 12, before
    assert before["/ui/"] <= 16, before


@pytest.mark.parametrize("url", ["/ui/", "/ui/tasks", "/ui/ops"])
def test_pages_work_on_an_empty_database(ui: FlaskClient, url: str) -> None:
    page(ui, url)


def test_search_boxes_search(ui: FlaskClient, swarm: Swarm) -> None:
    # The task list searches titles; the task page searches its log messages.
    found = page(ui, "/ui/tasks?q=Sub")
    body = found[found.index("<tbody>") : found.index("</tbody>")]
    assert body.count("<tr") == 1 and f"/ui/tasks/{swarm.subtask}" in body
    logs_page = page(ui, f"/ui/tasks/{swarm.task}?q=%22step+1%22")
    assert logs_page.count("step 1 ") >= 1 and "step 2 " not in logs_page
    # Input the store refuses (no word at all) is a clear page naming the field, not a 500.
    refused = page(ui, "/ui/tasks?q=%2A%2A%2A", status=422)
    assert "q" in refused
