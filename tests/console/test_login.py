"""Console login with SWARM_API_TOKEN: form, signed cookie, logout, CSRF, no secret leaks."""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from itsdangerous import BadSignature

from swarm_director.config import Settings
from swarm_director.console.auth import SECRET_FILE, session_secret, stored_secret
from tests.api.conftest import AppFactory

TOKEN = "s3cret-token-value"


@pytest.fixture
def locked(make_app: AppFactory) -> Flask:
    return make_app(SWARM_API_TOKEN=TOKEN)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _login(client: FlaskClient, key: str, next_url: str = "/ui/tasks") -> tuple[int, str]:
    form = client.get("/ui/login").get_data(as_text=True)
    response = client.post("/ui/login", data={"key": key, "csrf": _csrf(form), "next": next_url})
    return response.status_code, response.headers.get("Location", "")


def test_pages_need_a_login_and_the_form_opens_them(locked: Flask) -> None:
    client = locked.test_client()
    response = client.get("/ui/tasks?status=failed")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/ui/login?next=")
    status, where = _login(client, TOKEN, "/ui/tasks?status=failed")
    assert (status, where) == (302, "/ui/tasks?status=failed")
    cookie = client.get_cookie("swarm_console")
    assert cookie is not None and TOKEN not in cookie.value
    assert cookie.http_only and cookie.same_site == "Strict"
    page = client.get("/ui/tasks")
    assert page.status_code == 200
    assert TOKEN not in page.get_data(as_text=True)
    assert "Log out" in page.get_data(as_text=True)


def test_a_wrong_key_is_refused(locked: Flask) -> None:
    client = locked.test_client()
    status, _ = _login(client, "wrong")
    assert status == 200
    assert client.get("/ui/").status_code == 302


def test_login_without_the_forms_token_is_refused(locked: Flask) -> None:
    client = locked.test_client()
    response = client.post("/ui/login", data={"key": TOKEN})
    assert response.status_code == 200
    assert "expired" in response.get_data(as_text=True)
    assert client.get("/ui/").status_code == 302


def test_logout_needs_the_csrf_token_and_ends_the_session(locked: Flask) -> None:
    client = locked.test_client()
    _login(client, TOKEN)
    assert client.post("/ui/logout").status_code == 400  # a forged POST logs nobody out
    assert client.get("/ui/").status_code == 200
    html = client.get("/ui/").get_data(as_text=True)
    response = client.post("/ui/logout", data={"csrf": _csrf(html)})
    assert response.status_code == 302
    assert client.get("/ui/").status_code == 302


def test_next_never_leaves_the_console(locked: Flask) -> None:
    client = locked.test_client()
    for target in ("https://evil.example/", "//evil.example/x", "/api/tasks", "/ui\\..\\x"):
        _, where = _login(client, TOKEN, target)
        assert where == "/ui/", target


def test_a_cookie_from_another_token_is_refused(make_app: AppFactory) -> None:
    old = make_app(SWARM_API_TOKEN=TOKEN)
    client = old.test_client()
    _login(client, TOKEN)
    cookie = client.get_cookie("swarm_console")
    assert cookie is not None
    rotated = make_app(SWARM_API_TOKEN="another-token-0123456789").test_client()
    rotated.set_cookie("swarm_console", cookie.value)
    assert rotated.get("/ui/").status_code == 302


def test_the_api_still_wants_its_bearer_token(locked: Flask) -> None:
    client = locked.test_client()
    _login(client, TOKEN)
    assert client.get("/api/tasks").status_code == 401  # the cookie is not an API credential
    response = client.get("/api/tasks", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_without_a_token_there_is_no_login(make_app: AppFactory) -> None:
    client = make_app().test_client()
    assert client.get("/ui/").status_code == 200
    assert client.get("/ui/login").status_code == 302
    assert "Log out" not in client.get("/ui/").get_data(as_text=True)


def test_the_session_key_is_random_kept_private_and_the_same_for_every_worker(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    settings = Settings(SWARM_API_TOKEN=TOKEN, SWARM_DATA_DIR=str(data))
    one = session_secret(settings)
    two = session_secret(
        Settings(SWARM_API_TOKEN="another-token-0123456789", SWARM_DATA_DIR=str(data))
    )
    assert one == two, "every worker (and a restart) reads the same key"
    assert TOKEN.encode() not in one and len(one) >= 32
    kept = data / SECRET_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # Not derived from the token: another folder gets another key for the same token.
    other = Settings(SWARM_API_TOKEN=TOKEN, SWARM_DATA_DIR=str(tmp_path / "elsewhere"))
    assert session_secret(other) != one
    given = Settings(SWARM_SECRET_KEY="console-signing-key-0123", SWARM_DATA_DIR=str(data))
    assert session_secret(given) == b"console-signing-key-0123"


def test_workers_starting_together_keep_one_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: stored_secret(data), range(32)))
    assert len(found) == 1
    assert [p.name for p in data.iterdir()] == [SECRET_FILE]  # no temporary file left


def test_a_cookie_cannot_be_used_to_guess_the_token_offline(make_app: AppFactory) -> None:
    """The cookie used to be signed with a key derived from the token: anyone logged in could
    test guesses of the token against their own cookie. Now the signing key is random."""
    client = make_app(SWARM_API_TOKEN=TOKEN).test_client()
    _login(client, TOKEN)
    cookie = client.get_cookie("swarm_console")
    assert cookie is not None
    derived = hmac.new(TOKEN.encode(), b"swarm-director console session v1", hashlib.sha256)
    guess = SecureCookieSessionInterface()
    app = Flask("guess")
    app.secret_key = derived.digest()
    serializer = guess.get_signing_serializer(app)
    assert serializer is not None
    with pytest.raises(BadSignature):
        serializer.loads(cookie.value)


def test_an_api_key_opens_the_console_until_it_is_revoked(make_app: AppFactory) -> None:
    from swarm_director.enums import ApiScope
    from swarm_director.store import keys
    from swarm_director.web.context import database

    app = make_app(SWARM_SECRET_KEY="console-signing-key-for-tests")
    with database(app).transaction() as session:
        reader = keys.create_key(session, "reader", ApiScope.READ).token
    client = app.test_client()
    assert client.get("/ui/").status_code == 302  # a key exists: the console needs a login
    assert _login(client, reader, "/ui/tasks") == (302, "/ui/tasks")
    page = client.get("/ui/tasks")
    assert page.status_code == 200 and reader not in page.get_data(as_text=True)
    cookie = client.get_cookie("swarm_console")
    assert cookie is not None and reader not in cookie.value
    with database(app).transaction() as session:
        keys.revoke_key(session, "reader")
    assert client.get("/ui/tasks").status_code == 302  # the session ended with the key
    status, _ = _login(client, reader)
    assert status == 200 and client.get("/ui/").status_code == 302


def test_api_keys_open_the_console_without_a_configured_signing_key(
    make_app: AppFactory,
) -> None:
    from swarm_director.enums import ApiScope
    from swarm_director.store import keys
    from swarm_director.web.context import database

    app = make_app()  # no SWARM_API_TOKEN, no SWARM_SECRET_KEY: the kept key signs
    with database(app).transaction() as session:
        reader = keys.create_key(session, "reader", ApiScope.READ).token
    client = app.test_client()
    assert client.get("/ui/").status_code == 302
    assert _login(client, reader, "/ui/tasks") == (302, "/ui/tasks")
    assert client.get("/ui/tasks").status_code == 200


def test_without_a_usable_data_folder_the_form_says_what_to_set(
    make_app: AppFactory, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    client = make_app(SWARM_API_TOKEN=TOKEN, SWARM_DATA_DIR=str(blocker / "data")).test_client()
    form = client.get("/ui/login")
    assert form.status_code == 200 and "SWARM_SECRET_KEY" in form.get_data(as_text=True)
    response = client.post("/ui/login", data={"key": TOKEN, "csrf": "x"})
    assert response.status_code == 200
    assert client.get("/ui/").status_code == 302


def test_a_console_session_reads_the_live_log_stream_and_nothing_else(
    make_app: AppFactory,
) -> None:
    from swarm_director.schemas.tasks import TaskCreate
    from swarm_director.store import tasks as task_store
    from swarm_director.web.context import database

    app = make_app(SWARM_API_TOKEN=TOKEN, SWARM_STREAM_MAX_S="0.3")
    with database(app).transaction() as session:
        task = task_store.create_task(session, TaskCreate(type="analysis", title="t"))
        task_id = task.id
    client = app.test_client()
    stream = f"/api/tasks/{task_id}/logs/stream"
    assert client.get(stream).status_code == 401  # no session, no token
    _login(client, TOKEN)
    response = client.get(stream)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    # The cookie is not an API credential anywhere else.
    assert client.get(f"/api/tasks/{task_id}").status_code == 401
    assert client.get("/api/logs").status_code == 401
