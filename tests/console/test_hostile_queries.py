"""Query strings that used to cost the console a 500: a parameter repeating a path id, and
CR/LF in the login's ``next``."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.conftest import AppFactory
from tests.console.conftest import Swarm
from tests.console.test_pages import links

TOKEN = "s3cret-token-value"


def path_id_routes(app: Flask) -> list[tuple[str, list[str]]]:
    """Every console GET route with an id in its path: (rule, its argument names)."""
    return sorted(
        (rule.rule, sorted(rule.arguments))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        and rule.arguments
        and "GET" in rule.methods
        and rule.endpoint != "console.static"
    )


def fill_path(rule: str, swarm: Swarm) -> str:
    ids = {
        "agent_id": swarm.worker,
        "task_id": swarm.task,
        "conversation_id": swarm.conversation,
    }
    for name, value in ids.items():
        rule = rule.replace(f"<int:{name}>", str(value))
    # Rows the swarm has one or more of: its first.
    for name in ("log_id", "message_id"):
        rule = rule.replace(f"<int:{name}>", "1")
    assert "<" not in rule, rule
    return rule


def test_a_query_parameter_repeating_a_path_id_is_ignored(
    console_app: Flask, ui: FlaskClient, swarm: Swarm
) -> None:
    routes = path_id_routes(console_app)
    assert {"/ui/tasks/<int:task_id>", "/ui/agents/<int:agent_id>"} <= {r for r, _ in routes}
    for rule, names in routes:
        url = fill_path(rule, swarm)
        for name in names:
            for value in ("5", "abc", "-1", url.rsplit("/", 1)[-1], "%0d%0a"):
                response = ui.get(f"{url}?{name}={value}")
                assert response.status_code == 200, (url, name, value, response.status_code)
                if response.mimetype != "text/html":
                    continue
                # The page's own links name the row of the path, never the repeated one.
                for href in links(response.get_data(as_text=True)).hrefs:
                    assert f"{name}=" not in href or not href.startswith(url), (url, href)


def test_the_task_page_with_a_repeated_task_id_shows_the_paths_task(
    ui: FlaskClient, swarm: Swarm
) -> None:
    html = ui.get(f"/ui/tasks/{swarm.task}?task_id={swarm.subtask}").get_data(as_text=True)
    assert f"Task {swarm.task}:" in html
    # Its session links (built from the page's own URL) still point at this task.
    session_links = [h for h in links(html).hrefs if "session_id=" in h]
    assert session_links and all(h.startswith(f"/ui/tasks/{swarm.task}?") for h in session_links)


@pytest.mark.parametrize(
    "target",
    [
        "/ui/\r\nSet-Cookie: x=1",
        "/ui/tasks\r\nLocation: https://evil.example/",
        "/ui/\nx",
        "/ui/\tx",
        "/ui/\x00",
        "/ui/\u2028x",
    ],
)
def test_control_characters_in_next_go_to_the_overview(make_app: AppFactory, target: str) -> None:
    # Without a token the login form is skipped: it redirects to next at once.
    response = make_app().test_client().get(f"/ui/login?next={quote(target)}")
    assert (response.status_code, response.headers["Location"]) == (302, "/ui/")
    # With one, next is carried through the form and followed after a good key.
    client = make_app(SWARM_API_TOKEN=TOKEN).test_client()
    response = client.get(f"/ui/login?next={quote(target)}")
    assert response.status_code == 200
    form = response.get_data(as_text=True)
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    posted = client.post("/ui/login", data={"key": TOKEN, "csrf": csrf, "next": target})
    assert (posted.status_code, posted.headers["Location"]) == (302, "/ui/")
    assert "x=1" not in str(posted.headers) and "evil" not in str(posted.headers)
