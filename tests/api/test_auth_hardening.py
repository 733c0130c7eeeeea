"""What the outside probe found at the API's front door: guessing tokens is slowed down and
logged without the secret, tokens and secrets have a minimum length, scope is decided on the
path the router reads, redirects never name the Host a client sent, and no API answer is
cached."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from flask import Flask

from swarm_director.cli.main import cli
from swarm_director.config import MIN_SECRET_CHARS, load_settings
from swarm_director.errors import ConfigError
from swarm_director.models import ApiScope
from swarm_director.store import keys as key_store
from swarm_director.web.context import database
from swarm_director.web.throttle import FailureCounter
from tests.api.conftest import AppFactory
from tests.api.helpers import error_of

TOKEN = "bootstrap-token-for-tests-0123"
LIMIT = 5


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _from(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": address}


def _create(app: Flask, name: str, scope: ApiScope) -> str:
    with database(app).transaction() as session:
        return key_store.create_key(session, name, scope).token


@pytest.fixture
def locked(make_app: AppFactory) -> Flask:
    return make_app(SWARM_API_TOKEN=TOKEN, SWARM_AUTH_FAIL_LIMIT=LIMIT)


# --- slow-down of failed tokens ---------------------------------------------------------------


def test_wrong_tokens_from_one_address_get_429_with_retry_after(locked: Flask) -> None:
    client = locked.test_client()
    attacker = _from("203.0.113.7")
    for n in range(LIMIT):
        wrong = client.get(
            "/api/tasks", headers=_bearer(f"guess-{n:04d}-0123456789"), environ_base=attacker
        )
        error_of(wrong, 401)
    throttled = client.get(
        "/api/tasks", headers=_bearer("guess-next-0123456789"), environ_base=attacker
    )
    error = error_of(throttled, 429)
    assert error["code"] == "too_many_requests"
    wait = int(throttled.headers["Retry-After"])
    assert 1 <= wait <= 60 and error["details"]["retry_after_s"] == wait
    # Locked out means locked out: the right token from that address learns nothing either.
    right_there = client.get("/api/tasks", headers=_bearer(TOKEN), environ_base=attacker)
    error_of(right_there, 429)
    # Another client is not slowed by it.
    ok = client.get("/api/tasks", headers=_bearer(TOKEN), environ_base=_from("198.51.100.2"))
    assert ok.status_code == 200


def test_a_right_token_is_never_counted_or_slowed(locked: Flask) -> None:
    client = locked.test_client()
    for _ in range(LIMIT * 3):
        response = client.get("/api/tasks", headers=_bearer(TOKEN), environ_base=_from("10.0.0.1"))
        assert response.status_code == 200


def test_guessing_one_key_id_from_many_addresses_is_throttled_per_key_id(
    locked: Flask,
) -> None:
    client = locked.test_client()
    token = _create(locked, "agent-1", ApiScope.READ)
    key_id = key_store.key_id_of(token)
    assert key_id is not None
    wrong = f"sdk_{key_id}_{'A' * 43}"
    for n in range(LIMIT):
        response = client.get(
            "/api/tasks", headers=_bearer(wrong), environ_base=_from(f"192.0.2.{n}")
        )
        error_of(response, 401)
    response = client.get("/api/tasks", headers=_bearer(wrong), environ_base=_from("192.0.2.99"))
    error_of(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    # The key's owner is not locked out by strangers who know its (public) id.
    ok = client.get("/api/tasks", headers=_bearer(token), environ_base=_from("192.0.2.100"))
    assert ok.status_code == 200


def test_each_failure_is_logged_without_the_secret(
    locked: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = locked.test_client()
    token = _create(locked, "agent-2", ApiScope.READ)
    key_id = key_store.key_id_of(token)
    wrong_key = f"sdk_{key_id}_{'B' * 43}"
    wrong_token = "not-the-bootstrap-token-42"
    with caplog.at_level(logging.WARNING, logger="swarm_director.auth"):
        client.get("/api/tasks", headers=_bearer(wrong_key), environ_base=_from("203.0.113.9"))
        client.get("/api/tasks", headers=_bearer(wrong_token), environ_base=_from("203.0.113.9"))
    lines = [r.getMessage() for r in caplog.records if r.name == "swarm_director.auth"]
    assert len(lines) == 2, lines
    assert f"key_id={key_id}" in lines[0] and "address=203.0.113.9" in lines[0]
    assert "reason=unknown" in lines[1] and "via=api" in lines[1]
    text = "\n".join(lines)
    assert "B" * 43 not in text and wrong_token not in text and TOKEN not in text


def test_the_counter_forgets_the_oldest_when_full() -> None:
    now = [0.0]
    counter = FailureCounter(2, 60.0, max_tracked=100, clock=lambda: now[0])
    for n in range(10_000):  # an attacker rotating addresses
        counter.failed([f"address 10.{n // 256}.{n % 256}.1"])
    assert len(counter) == 100
    counter.failed(["address a"])
    counter.failed(["address a"])
    assert counter.retry_after(["address a"]) == 60
    now[0] = 30.0
    assert counter.retry_after(["address a"]) == 30
    now[0] = 60.5
    assert counter.retry_after(["address a"]) is None


# --- minimum length of tokens and secrets -----------------------------------------------------


@pytest.mark.parametrize("name", ["SWARM_API_TOKEN", "SWARM_SECRET_KEY"])
def test_a_short_token_or_secret_is_refused_in_one_line(name: str) -> None:
    short = "s3cret"
    with pytest.raises(ConfigError) as refused:
        load_settings(**{name: short})
    message = str(refused.value)
    assert message == (
        f"invalid setting {name}: must be at least {MIN_SECRET_CHARS} characters "
        "(make one with `openssl rand -hex 32`)"
    )
    assert short not in message
    assert load_settings(**{name: "x" * MIN_SECRET_CHARS}) is not None


def test_the_app_refuses_to_start_with_a_short_token() -> None:
    from swarm_director import create_app

    with pytest.raises(ConfigError, match="SWARM_API_TOKEN: must be at least 16"):
        create_app({"DATABASE_URL": "sqlite://", "SWARM_API_TOKEN": "s3cret"})


def test_serve_refuses_a_short_token(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("SWARM_API_TOKEN", "s3cret")
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines == ["Error: invalid setting SWARM_API_TOKEN: must be at least 16 characters "
                     "(make one with `openssl rand -hex 32`)"], result.output  # fmt: skip


def test_an_empty_token_still_means_no_token(make_app: AppFactory) -> None:
    client = make_app(SWARM_API_TOKEN="").test_client()
    assert client.get("/api/tasks").status_code == 200


# --- paths, redirects, caching -----------------------------------------------------------------


def test_scope_is_decided_on_the_path_the_router_reads(locked: Flask) -> None:
    client = locked.test_client()
    reader = _create(locked, "reader", ApiScope.READ)
    for path in ("/api//admin/stats", "/api/./admin/stats", "/api/tasks/../admin/stats"):
        error = error_of(client.get(path, headers=_bearer(reader)), 403)
        assert error["details"]["required_scope"] == "admin", path


def test_redirects_never_name_the_host_the_client_sent(locked: Flask) -> None:
    client = locked.test_client()
    for path in ("/ui", "/api//health", "/"):
        response = client.get(path, headers={"Host": "evil.example"})
        assert 300 <= response.status_code < 400, path
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//"), (path, location)
        assert "evil.example" not in location


def test_api_answers_are_not_cached(locked: Flask) -> None:
    client = locked.test_client()
    assert client.get("/api/tasks", headers=_bearer(TOKEN)).headers["Cache-Control"] == "no-store"
    assert client.get("/api/tasks").headers["Cache-Control"] == "no-store"  # 401 too
    assert client.get("/api/health").headers["Cache-Control"] == "no-store"
    assert client.get("/api/openapi.json", headers=_bearer(TOKEN)).headers["Cache-Control"] == (
        "no-store"
    )
