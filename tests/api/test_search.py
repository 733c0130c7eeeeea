"""Search over HTTP: q= on the four lists, with their filters and cursors; hostile queries."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.api.helpers import all_pages, created, error_of, make_agent, make_task

T0 = datetime(2026, 1, 1, tzinfo=UTC)

#: What users paste into a search box that would be syntax to an engine (FTS5, tsquery).
HOSTILE = [
    '"',
    '""',
    '"a',
    "AND OR (",
    "NOT",
    "*",
    "needle*",
    "NEAR(needle hay, 2)",
    "message:needle",
    "col:term",
    "^needle",
    "needle -hay",
    "needle | hay",
    "needle & hay",
    "!needle",
    "needle <-> hay",
    "needle:*",
    "'needle'",
    "\\",
    "%_%",
    "'; DROP TABLE agent_logs; --",
    "(((((((((((",
    "\u202enedeel\u202c",
    "🙂 needle",
    "\uff4e\uff45\uff45\uff44\uff4c\uff45",  # fullwidth "needle"
    "\x01\x02\x7f",
    "needle\thay\n",
]


@pytest.fixture
def task_with_logs(client: FlaskClient) -> dict[str, Any]:
    task = make_task(client)
    rows = [
        {
            "agent_type": "worker",
            "message": f"{'needle' if i % 5 == 0 else 'hay'} number {i}",
            "timestamp": (T0 + timedelta(seconds=i // 3)).isoformat(),
            "log_level": "error" if i % 2 else "info",
        }
        for i in range(50)
    ]
    response = client.post(f"/api/tasks/{task['id']}/logs", json=rows)
    assert response.status_code == 201, response.get_json()
    return task


def test_logs_search_pages_hold_every_hit_once(
    client: FlaskClient, task_with_logs: dict[str, Any]
) -> None:
    url = f"/api/tasks/{task_with_logs['id']}/logs?q=needle"
    newest_first = all_pages(client, url, limit=3)
    assert [log["message"] for log in newest_first] == [
        f"needle number {i}" for i in range(45, -1, -5)
    ]
    oldest_first = all_pages(client, f"{url}&order=asc", limit=4)
    assert oldest_first == newest_first[::-1]
    across = all_pages(client, f"/api/logs?q=needle&task_id={task_with_logs['id']}", limit=7)
    assert across == newest_first


def test_logs_search_combines_with_filters(
    client: FlaskClient, task_with_logs: dict[str, Any]
) -> None:
    task_id = task_with_logs["id"]
    errors = all_pages(client, f"/api/tasks/{task_id}/logs?q=needle&level=error", limit=2)
    assert [log["message"] for log in errors] == [f"needle number {i}" for i in (45, 35, 25, 15, 5)]
    since, until = (
        quote((T0 + timedelta(seconds=5)).isoformat()),
        quote((T0 + timedelta(seconds=10)).isoformat()),
    )
    window = client.get(f"/api/logs?q=needle&since={since}&until={until}").get_json()
    assert [log["message"] for log in window["items"]] == [
        "needle number 25",
        "needle number 20",
        "needle number 15",
    ]
    phrase = client.get(f"/api/logs?q={quote(chr(34) + 'needle number 4' + chr(34))}")
    assert [log["message"] for log in phrase.get_json()["items"]] == []
    phrase = client.get(f"/api/logs?q={quote(chr(34) + 'Needle Number 40' + chr(34))}")
    assert [log["message"] for log in phrase.get_json()["items"]] == ["needle number 40"]


def test_tasks_search_with_filters_and_pages(client: FlaskClient) -> None:
    for i in range(7):
        make_task(client, f"Invoice run {i}", priority="high" if i % 2 else "low")
    make_task(client, "Lunch", description="invoice the client for lunch")
    make_task(client, "Other")
    found = all_pages(client, "/api/tasks?q=invoice", limit=3)
    assert [t["title"] for t in found] == [*(f"Invoice run {i}" for i in range(7)), "Lunch"]
    high = all_pages(client, "/api/tasks?q=invoice&priority=high", limit=2)
    assert [t["title"] for t in high] == ["Invoice run 1", "Invoice run 3", "Invoice run 5"]


def test_messages_search_with_thread_filter_and_pages(client: FlaskClient) -> None:
    agent = make_agent(client, "talker")
    conv = created(client, "/api/conversations", {"title": "c"})
    url = f"/api/conversations/{conv['id']}"
    created(client, f"{url}/participants", {"agent_id": agent["id"]})
    for i in range(9):
        body = {
            "content": f"deploy step {i}" if i % 2 else f"chat {i}",
            "sender_agent_id": agent["id"],
        }
        if i > 4:
            body["thread_id"] = "late"
        created(client, f"{url}/messages", body)
    found = all_pages(client, f"{url}/messages?q=deploy", limit=2)
    assert [m["content"] for m in found] == [f"deploy step {i}" for i in (1, 3, 5, 7)]
    late = all_pages(client, f"{url}/messages?q=deploy&thread_id=late", limit=1)
    assert [m["content"] for m in late] == ["deploy step 5", "deploy step 7"]
    error_of(client.get("/api/conversations/999999/messages?q=deploy"), 404)


def test_hostile_queries_are_plain_words_or_a_clear_422(
    client: FlaskClient, task_with_logs: dict[str, Any]
) -> None:
    answered = set()
    for text in HOSTILE:
        for url in ("/api/logs", f"/api/tasks/{task_with_logs['id']}/logs", "/api/tasks"):
            response = client.get(f"{url}?q={quote(text)}")
            answered.add(response.status_code)
            if response.status_code == 200:
                continue
            error = error_of(response, 422)
            assert "no word" in error["details"]["fields"]["q"], (text, error)
            assert error["message"].startswith("invalid search query"), (text, error)
    assert answered == {200, 422}


def test_hostile_query_results_are_those_of_its_words(
    client: FlaskClient, task_with_logs: dict[str, Any]
) -> None:
    def messages(text: str) -> list[str]:
        response = client.get(f"/api/logs?q={quote(text)}&limit=1000")
        assert response.status_code == 200, response.get_json()
        return [log["message"] for log in response.get_json()["items"]]

    needles = messages("needle")
    assert len(needles) == 10
    for text in ("needle*", "(needle)", "^needle", "!needle", "needle:*", "'needle'"):
        assert messages(text) == needles, text
    assert messages("message:needle") == []  # the two words, adjacent: no row has them
    assert messages("NOT needle") == []  # "not" is a word no row holds


def test_long_nul_and_wordless_queries_are_422(client: FlaskClient) -> None:
    conv = created(client, "/api/conversations", {"title": "c"})
    urls = ["/api/logs", "/api/tasks", f"/api/conversations/{conv['id']}/messages"]
    for url in urls:
        for text, words in [
            ("x" * 10_000, "500 characters"),
            ("needle\x00", "NUL"),
            ("* ( )", "no word"),
            ("", "no word"),
        ]:
            error = error_of(client.get(f"{url}?q={quote(text)}"), 422)
            assert words in str(error["details"]["fields"]["q"]), (url, error)


def test_random_unicode_queries_never_fail(
    client: FlaskClient, task_with_logs: dict[str, Any]
) -> None:
    rng = random.Random(20261201)
    alphabet = "\"'()*:^-+|&!<>\\%_ \t\nANDORNEAR" + "".join(
        chr(c) for c in (0xE9, 0x3042, 0x1F600, 0x202E, 0x0301, 0xFF41, 0x05D0)
    )
    for _ in range(150):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        response = client.get(f"/api/logs?q={quote(text)}")
        assert response.status_code in (200, 422), (text, response.get_data(as_text=True))


def test_q_is_documented_on_the_four_lists(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    for path in (
        "/api/logs",
        "/api/tasks/{task_id}/logs",
        "/api/tasks",
        "/api/conversations/{conversation_id}/messages",
    ):
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert "q" in names, path
