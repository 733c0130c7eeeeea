"""The live tail's bounds, in process: a strict ``Last-Event-ID``, streams per key and per
console address, and a stream that ends as soon as its key is revoked or expires."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.db.base import utcnow
from swarm_director.models import ApiKey, ApiScope
from swarm_director.store import keys as key_store
from swarm_director.web.context import database
from tests.api.conftest import AppFactory
from tests.api.helpers import error_of

#: Long enough for any minimum the server may enforce on tokens.
TOKEN = "stream-test-bootstrap-token-0123456789abcdef"
#: Streams poll every 20 ms and re-check their key every 100 ms; a stream that is never told
#: to end still ends after 5 s, so a failure costs seconds, not the test run.
FAST = {
    "SWARM_API_TOKEN": TOKEN,
    "SWARM_STREAM_POLL_S": 0.02,
    "SWARM_STREAM_KEY_CHECK_S": 0.1,
    "SWARM_STREAM_MAX_S": 5,
}

Event = tuple[str, dict[str, Any]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Stream:
    """An open stream read event by event (``name``, decoded data); heartbeats skipped."""

    def __init__(self, response: Any) -> None:
        assert response.status_code == 200, response.get_data(as_text=True)
        self.response = response
        self._chunks = iter(response.response)
        self._buffer = ""

    def events(self) -> Iterator[Event]:
        while True:
            while "\n\n" not in self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return
                self._buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            block, self._buffer = self._buffer.split("\n\n", 1)
            fields = dict(
                line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
            )
            if "data" in fields:
                yield fields.get("event", "message"), json.loads(fields["data"])

    def next(self) -> Event:
        return next(self.events())

    def rest(self) -> list[Event]:
        """Every event until the server ends the stream."""
        return list(self.events())


@contextmanager
def stream(client: FlaskClient, path: str = "/api/logs/stream", **kwargs: Any) -> Iterator[Stream]:
    response = client.get(path, buffered=False, **kwargs)
    try:
        opened = Stream(response)
        assert opened.next()[0] == "ready"
        yield opened
    finally:
        response.close()  # what the server does when the client goes: frees the slot


def _key(app: Flask, name: str, scope: ApiScope = ApiScope.READ) -> str:
    with database(app).transaction() as session:
        token = key_store.create_key(session, name, scope).token
    app.extensions["swarm_director"].auth.checked_at = float("-inf")  # keys exist now
    return token


def _revoke(app: Flask, name: str) -> None:
    with database(app).transaction() as session:
        key_store.revoke_key(session, name)


def _expire(app: Flask, name: str) -> None:
    # What the clock does to a key with a lifetime, without waiting for it.
    with database(app).transaction() as session:
        key = session.scalars(sa.select(ApiKey).where(ApiKey.name == name)).one()
        key.expires_at = utcnow() - timedelta(milliseconds=1)


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(**FAST)


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


@pytest.fixture
def task_id(admin: FlaskClient) -> int:
    response = admin.post("/api/tasks", json={"type": "analysis", "title": "followed"})
    assert response.status_code == 201, response.get_json()
    value: int = response.get_json()["id"]
    return value


def _post(admin: FlaskClient, task_id: int, message: str) -> None:
    body = {"agent_type": "tail", "message": message}
    response = admin.post(f"/api/tasks/{task_id}/logs", json=body)
    assert response.status_code == 201, response.get_json()


# --- Last-Event-ID -------------------------------------------------------------------------


def test_last_event_id_must_be_digits(admin: FlaskClient) -> None:
    """Regression (schemathesis, PostgreSQL): ``Last-Event-ID: 60.0`` was read as 60, though
    the document says an integer."""
    for value in ["60.0", " 60", "60 ", "+60", "6_0", "1e3", "-1", "x", ""]:
        response = admin.get("/api/logs/stream", headers={"Last-Event-ID": value})
        error = error_of(response, 422)
        assert list(error["details"]["fields"]) == ["Last-Event-ID"], value
        assert "Last-Event-ID" in error["message"]


def test_a_digits_last_event_id_resumes_after_it(admin: FlaskClient, task_id: int) -> None:
    _post(admin, task_id, "one")
    _post(admin, task_id, "two")
    first = admin.get(f"/api/tasks/{task_id}/logs").get_json()["items"]
    oldest = min(row["id"] for row in first)
    with stream(admin, headers={"Last-Event-ID": str(oldest)}) as opened:
        assert opened.next()[1]["message"] == "two"


def test_the_query_cursor_is_as_strict(admin: FlaskClient) -> None:
    error = error_of(admin.get("/api/logs/stream?cursor=60.0"), 422)
    assert list(error["details"]["fields"]) == ["cursor"]


def test_the_document_still_calls_the_header_an_integer(admin: FlaskClient) -> None:
    document = admin.get("/api/openapi.json").get_json()
    parameters = document["paths"]["/api/logs/stream"]["get"]["parameters"]
    (header,) = [p for p in parameters if p["name"] == "Last-Event-ID"]
    options = header["schema"].get("anyOf", [header["schema"]])
    assert {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}.items() <= options[0].items()


# --- slots per key and per console address -------------------------------------------------


def test_one_key_cannot_take_every_stream(make_app: AppFactory) -> None:
    app = make_app(**FAST, SWARM_STREAM_MAX_PER_KEY=2, SWARM_STREAM_MAX_CLIENTS=5)
    greedy, other = _key(app, "greedy"), _key(app, "other")
    client = app.test_client()
    with stream(client, headers=_bearer(greedy)), stream(client, headers=_bearer(greedy)):
        refused = client.get("/api/logs/stream", headers=_bearer(greedy))
        error = error_of(refused, 429)
        assert refused.headers["Retry-After"].isdigit()
        assert "SWARM_STREAM_MAX_PER_KEY" in error["message"] and "'greedy'" in error["message"]
        assert error["details"] == {"max_streams_per_key": 2}
        with stream(client, headers=_bearer(other)), stream(client, headers=_bearer(TOKEN)):
            pass  # another key, and the bootstrap token, still get theirs
    with stream(client, headers=_bearer(greedy)):
        pass  # closing its streams gave the key its slots back


def test_the_process_limit_still_holds(make_app: AppFactory) -> None:
    app = make_app(**FAST, SWARM_STREAM_MAX_PER_KEY=2, SWARM_STREAM_MAX_CLIENTS=3)
    tokens = [_key(app, f"k{i}") for i in range(2)]
    client = app.test_client()
    with (
        stream(client, headers=_bearer(tokens[0])),
        stream(client, headers=_bearer(tokens[0])),
        stream(client, headers=_bearer(tokens[1])),
    ):
        refused = client.get("/api/logs/stream", headers=_bearer(tokens[1]))
        error = error_of(refused, 503)
        assert "SWARM_STREAM_MAX_CLIENTS=3" in error["message"]
        assert refused.headers["Retry-After"] == "2"


def _console(app: Flask, key: str, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    form = client.get("/ui/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None, form
    response = client.post("/ui/login", data={"key": key, "csrf": csrf.group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def test_console_sessions_are_counted_per_address(make_app: AppFactory) -> None:
    app = make_app(**FAST, SWARM_STREAM_MAX_PER_KEY=1)
    token = _key(app, "viewer")
    here, again = _console(app, token, "10.0.0.1"), _console(app, TOKEN, "10.0.0.1")
    elsewhere = _console(app, token, "10.0.0.2")
    with stream(here):
        error = error_of(again.get("/api/logs/stream"), 429)
        assert "address 10.0.0.1" in error["message"]
        with stream(elsewhere), stream(app.test_client(), headers=_bearer(token)):
            pass  # another address; the key itself over the API


# --- a revoked or expired key ends its stream ---------------------------------------------


@pytest.mark.parametrize("reason", ["revoked", "expired"])
def test_a_stream_ends_when_its_key_is_no_longer_live(
    app: Flask, admin: FlaskClient, task_id: int, reason: str
) -> None:
    token = _key(app, "reader")
    with stream(app.test_client(), headers=_bearer(token)) as opened:
        _post(admin, task_id, "while live")
        assert opened.next()[1]["message"] == "while live"
        (_revoke if reason == "revoked" else _expire)(app, "reader")
        _post(admin, task_id, "after the key ended")
        started = time.monotonic()
        assert opened.rest() == [("end", {"reason": reason})]
        assert time.monotonic() - started < 2  # not at SWARM_STREAM_MAX_S
    refused = app.test_client().get("/api/logs/stream", headers=_bearer(token))
    assert error_of(refused, 401)["details"] == {"reason": reason}


def test_an_idle_stream_ends_within_the_check_interval(app: Flask) -> None:
    token = _key(app, "quiet")
    with stream(app.test_client(), headers=_bearer(token)) as opened:
        _revoke(app, "quiet")
        started = time.monotonic()
        assert opened.rest() == [("end", {"reason": "revoked"})]
        assert time.monotonic() - started < 2


def test_a_console_stream_ends_when_its_sessions_key_is_revoked(
    app: Flask, admin: FlaskClient, task_id: int
) -> None:
    viewer = _console(app, _key(app, "viewer"), "10.0.0.3")
    with stream(viewer, f"/api/tasks/{task_id}/logs/stream") as opened:
        _revoke(app, "viewer")
        _post(admin, task_id, "after the key ended")
        assert opened.rest() == [("end", {"reason": "revoked"})]


def test_the_bootstrap_token_stream_is_not_cut(
    app: Flask, admin: FlaskClient, task_id: int
) -> None:
    _key(app, "someone")
    with stream(admin) as opened:
        _revoke(app, "someone")  # another key's end is not this stream's
        _post(admin, task_id, "still delivered")
        name, data = opened.next()
        assert (name, data["message"]) == ("message", "still delivered")
