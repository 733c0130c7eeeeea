"""Console sessions on the server and what each session may see: logging out ends every copy
of the cookie, a read key's session sees no admin data, failed logins slow down."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.db import utcnow
from swarm_director.models import ApiScope, ConsoleSession
from swarm_director.ops.expiry import prune_console_sessions
from swarm_director.store import keys as key_store
from swarm_director.web.context import database
from tests.api.conftest import AppFactory

TOKEN = "console-bootstrap-token-0123"
LIMIT = 4


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _login(client: FlaskClient, key: str, **environ: str) -> int:
    form = client.get("/ui/login").get_data(as_text=True)
    response = client.post(
        "/ui/login",
        data={"key": key, "csrf": _csrf(form), "next": "/ui/"},
        environ_base=environ,
    )
    return response.status_code


def _create(app: Flask, name: str, scope: ApiScope) -> str:
    with database(app).transaction() as session:
        return key_store.create_key(session, name, scope).token


@pytest.fixture
def locked(make_app: AppFactory) -> Flask:
    return make_app(SWARM_API_TOKEN=TOKEN, SWARM_AUTH_FAIL_LIMIT=LIMIT)


# --- logout ends the session on the server -----------------------------------------------------


def test_logout_ends_every_copy_of_the_cookie(make_app: AppFactory) -> None:
    app = make_app(SWARM_API_TOKEN=TOKEN)
    browser = app.test_client()
    assert _login(browser, TOKEN) == 302
    cookie = browser.get_cookie("swarm_console")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("swarm_console", cookie.value)
    assert thief.get("/ui/tasks").status_code == 200  # a copy works while the session lasts
    html = browser.get("/ui/").get_data(as_text=True)
    assert browser.post("/ui/logout", data={"csrf": _csrf(html)}).status_code == 302
    copied = thief.get("/ui/tasks")
    assert copied.status_code == 302 and copied.headers["Location"].startswith("/ui/login")
    # Another worker or server sharing the database agrees.
    other_server = make_app(SWARM_API_TOKEN=TOKEN, SWARM_SECRET_KEY=None).test_client()
    other_server.set_cookie("swarm_console", cookie.value)
    assert other_server.get("/ui/tasks").status_code == 302


def test_a_session_works_in_another_worker_until_it_is_logged_out(make_app: AppFactory) -> None:
    one = make_app(SWARM_API_TOKEN=TOKEN)
    two = make_app(SWARM_API_TOKEN=TOKEN)  # same data folder: the same signing key
    browser = one.test_client()
    _login(browser, TOKEN)
    cookie = browser.get_cookie("swarm_console")
    assert cookie is not None
    elsewhere = two.test_client()
    elsewhere.set_cookie("swarm_console", cookie.value)
    assert elsewhere.get("/ui/").status_code == 200


def test_the_table_holds_no_usable_cookie_and_maintain_prunes_ended_sessions(
    make_app: AppFactory,
) -> None:
    app = make_app(SWARM_API_TOKEN=TOKEN)
    browser = app.test_client()
    _login(browser, TOKEN)
    html = browser.get("/ui/").get_data(as_text=True)
    other = app.test_client()
    _login(other, TOKEN)
    engine = database(app).engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ConsoleSession.__table__)).all()
    assert len(rows) == 2 and all(row.ended_at is None for row in rows)
    cookie = browser.get_cookie("swarm_console")
    assert cookie is not None and not any(row.session_hash in cookie.value for row in rows)
    browser.post("/ui/logout", data={"csrf": _csrf(html)})
    assert prune_console_sessions(engine, now=utcnow()) == 1
    assert other.get("/ui/").status_code == 200  # the live one stays


# --- what a session may see ---------------------------------------------------------------------


def test_a_read_session_sees_no_admin_data(make_app: AppFactory) -> None:
    app = make_app()
    admin_token = _create(app, "ops-admin", ApiScope.ADMIN)
    read_token = _create(app, "dashboard-reader", ApiScope.READ)
    reader, admin = app.test_client(), app.test_client()
    assert _login(reader, read_token) == 302 and _login(admin, admin_token) == 302

    refused = reader.get("/ui/ops")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "admin" in page
    key_id = key_store.key_id_of(admin_token)
    assert key_id is not None
    for secret_of_admins in ("ops-admin", key_id, "Audit trail", "Slowest statements"):
        assert secret_of_admins not in page, secret_of_admins
    overview = reader.get("/ui/").get_data(as_text=True)
    assert "Last backup" not in overview and "/api/admin/stats" not in overview
    assert database(app).masked_url not in overview
    assert 'href="/ui/ops"' not in overview  # the nav does not offer it

    shown = admin.get("/ui/ops")
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert "ops-admin" in text and "Audit trail" in text
    overview = admin.get("/ui/").get_data(as_text=True)
    assert "Last backup" in overview and 'href="/ui/ops"' in overview


def test_a_write_session_is_not_admin_either(make_app: AppFactory) -> None:
    app = make_app()
    writer = app.test_client()
    assert _login(writer, _create(app, "writer", ApiScope.WRITE)) == 302
    assert writer.get("/ui/ops").status_code == 403


def test_the_bootstrap_token_and_an_open_console_see_everything(make_app: AppFactory) -> None:
    assert make_app().test_client().get("/ui/ops").status_code == 200  # no auth at all
    client = make_app(SWARM_API_TOKEN=TOKEN).test_client()
    _login(client, TOKEN)
    assert client.get("/ui/ops").status_code == 200


# --- failed logins slow down --------------------------------------------------------------------


def test_failed_logins_get_429_with_retry_after_and_are_logged(
    locked: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = locked.test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.50"}
    with caplog.at_level(logging.WARNING, logger="swarm_director.auth"):
        for n in range(LIMIT):
            assert _login(client, f"guess-number-{n}-abcdefgh", **attacker) == 200
    form = client.get("/ui/login").get_data(as_text=True)
    response = client.post(
        "/ui/login",
        data={"key": TOKEN, "csrf": _csrf(form), "next": "/ui/"},
        environ_base=attacker,
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert client.get("/ui/").status_code == 302  # not logged in, even with the right key
    lines = [r.getMessage() for r in caplog.records if r.name == "swarm_director.auth"]
    failures = [line for line in lines if line.startswith("authentication failed")]
    assert len(failures) == LIMIT
    assert all("via=console" in line and "address=203.0.113.50" in line for line in failures)
    assert not any("guess-number" in line for line in lines)
    # Someone else logs in as usual.
    other = locked.test_client()
    assert _login(other, TOKEN, REMOTE_ADDR="198.51.100.20") == 302
    assert other.get("/ui/").status_code == 200
