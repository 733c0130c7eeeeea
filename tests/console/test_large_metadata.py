"""Pages listing rows with large (allowed) metadata stay under 200 kB: each document is shown
as a short preview with a link to the whole of it as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.console.common import PAGE_SIZE
from swarm_director.schemas.json_limits import DEFAULT_LIMITS
from swarm_director.store import agents, conversations, logs, tasks
from swarm_director.web.context import database
from tests.console.test_pages import links

#: Markup and quotes grow when escaped (" is &#34;): the worst case for a page's size.
BIG = {"note": '"<&' * 15_000, "n": list(range(500))}


@pytest.fixture
def big(console_app: Flask) -> dict[str, int]:
    assert len(json.dumps(BIG, separators=(",", ":"))) <= DEFAULT_LIMITS.max_bytes
    with database(console_app).transaction() as s:
        agent = agents.create_agent(s, {"name": "w", "agent_type": "worker", "config": BIG})
        task = tasks.create_task(
            s, {"type": "analysis", "title": "t", "assigned_agent_id": agent.id}
        )
        row = {"agent_type": "w", "agent_id": agent.id, "message": "m", "metadata": BIG}
        logs.add_logs(s, task.id, [row] * PAGE_SIZE)
        convo = conversations.create_conversation(s, {"title": "c", "metadata": BIG})
        conversations.add_participant(s, convo.id, agent.id)
        for _ in range(PAGE_SIZE):
            conversations.add_message(
                s, convo.id, {"content": "hi", "sender_agent_id": agent.id, "metadata": BIG}
            )
        return {"agent": agent.id, "task": task.id, "conversation": convo.id}


def _whole_json_links(html: str) -> list[str]:
    return [h for h in links(html).hrefs if h.endswith(("/metadata", "/config"))]


def test_pages_of_large_metadata_stay_small_and_link_the_whole(
    ui: FlaskClient, big: dict[str, int]
) -> None:
    pages = {
        f"/ui/tasks/{big['task']}": PAGE_SIZE,
        "/ui/logs": PAGE_SIZE,
        f"/ui/agents/{big['agent']}": 21,  # its config and its 20 newest logs
        f"/ui/conversations/{big['conversation']}": PAGE_SIZE + 1,
    }
    for url, documents in pages.items():
        response = ui.get(url)
        assert response.status_code == 200, url
        assert len(response.data) < 200_000, f"{url} is {len(response.data)} bytes"
        found = _whole_json_links(response.get_data(as_text=True))
        assert len(found) == documents, (url, len(found))
        for link in {found[0], found[-1]}:
            whole = ui.get(link)
            assert whole.status_code == 200 and whole.mimetype == "application/json", link
            assert whole.get_json() == BIG, link


def test_small_metadata_is_shown_whole_without_a_link(console_app: Flask, ui: FlaskClient) -> None:
    small: dict[str, Any] = {"html": "<b>&"}
    with database(console_app).transaction() as s:
        task = tasks.create_task(s, {"type": "analysis", "title": "t"})
        logs.add_log(s, task.id, {"agent_type": "w", "message": "m", "metadata": small})
    html = ui.get(f"/ui/tasks/{task.id}").get_data(as_text=True)
    assert "&lt;b&gt;&amp;" in html
    assert _whole_json_links(html) == []


def test_the_whole_json_routes_answer_404_for_a_missing_row(ui: FlaskClient) -> None:
    for url in (
        "/ui/logs/4242/metadata",
        "/ui/messages/4242/metadata",
        "/ui/conversations/4242/metadata",
        "/ui/agents/4242/config",
    ):
        assert ui.get(url).status_code == 404, url
