"""API keys at the HTTP edge: every scope against every route class, 401 and 403 in the one
error shape, revoked and expired keys, the bootstrap token, last-use bookkeeping, the OpenAPI
document's scopes, and only hashes at rest."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from swarm_director.db.base import utcnow
from swarm_director.db.engine import sqlite_file
from swarm_director.models import ApiKey, ApiScope
from swarm_director.ops.pgtools import find_tool, libpq_env
from swarm_director.store import keys as key_store
from swarm_director.web import auth
from swarm_director.web.context import database
from tests.api.conftest import AppFactory
from tests.api.helpers import error_of, make_agent, make_task


@dataclass
class Keys:
    app: Flask
    client: FlaskClient
    tokens: dict[str, str]
    """name → token: read, write, admin, revoked, expired."""
    task_id: int
    agent_id: int


def _create(app: Flask, name: str, scope: ApiScope, **kwargs: timedelta) -> str:
    with database(app).transaction() as session:
        return key_store.create_key(session, name, scope, **kwargs).token


def secret_of(token: str) -> str:
    """The secret part of ``sdk_<12 hex>_<secret>`` (the secret may itself hold ``_``)."""
    return token[len("sdk_") + 13 :]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keyed(make_app: AppFactory) -> Keys:
    app = make_app()
    client = app.test_client()
    # Some data to address, made while auth is still off (no key exists yet).
    agent_id = make_agent(client, "scoped")["id"]
    task_id = make_task(client, "scoped work")["id"]
    tokens = {scope.value: _create(app, scope.value, scope) for scope in ApiScope}
    tokens["revoked"] = _create(app, "revoked", ApiScope.ADMIN)
    tokens["expired"] = _create(app, "expired", ApiScope.ADMIN, expires_in=timedelta(days=1))
    with database(app).transaction() as session:
        key_store.revoke_key(session, "revoked")
        expired = session.scalars(sa.select(ApiKey).where(ApiKey.name == "expired")).one()
        expired.expires_at = utcnow() - timedelta(seconds=1)
    app.extensions["swarm_director"].auth.checked_at = float("-inf")  # see the new keys now
    return Keys(app, client, tokens, task_id, agent_id)


#: (method, path template, body, needed scope): one of each route class.
ROUTES = [
    ("GET", "/api/tasks", None, "read"),
    ("GET", "/api/tasks/{task}", None, "read"),
    ("GET", "/api/ready", None, "read"),
    ("GET", "/api/openapi.json", None, "read"),
    ("POST", "/api/agents", {"name": "new-{scope}", "agent_type": "worker"}, "write"),
    ("PATCH", "/api/agents/{agent}", {"description": "changed"}, "write"),
    ("POST", "/api/tasks/{task}/logs", {"agent_type": "worker", "message": "hi"}, "write"),
    ("DELETE", "/api/agents/{agent}", None, "write"),
    ("GET", "/api/admin/stats", None, "admin"),
]


@pytest.mark.parametrize("scope", [s.value for s in ApiScope])
def test_each_scope_reaches_exactly_its_route_classes(keyed: Keys, scope: str) -> None:
    granted = ApiScope(scope)
    for method, template, body, needed in ROUTES:
        path = template.format(task=keyed.task_id, agent=keyed.agent_id)
        json_body = (
            {k: v.format(scope=scope) if isinstance(v, str) else v for k, v in body.items()}
            if body
            else None
        )
        response = keyed.client.open(
            path, method=method, json=json_body, headers=bearer(keyed.tokens[scope])
        )
        label = f"{scope} {method} {path}"
        if granted.grants(ApiScope(needed)):
            assert response.status_code < 300, (label, response.get_json())
        else:
            error = error_of(response, 403)
            assert error["code"] == "forbidden", label
            assert error["details"] == {"scope": scope, "required_scope": needed}
            assert keyed.tokens[scope] not in response.get_data(as_text=True)


def test_a_refused_write_changes_nothing(keyed: Keys) -> None:
    response = keyed.client.delete(
        f"/api/agents/{keyed.agent_id}", headers=bearer(keyed.tokens["read"])
    )
    error_of(response, 403)
    got = keyed.client.get(f"/api/agents/{keyed.agent_id}", headers=bearer(keyed.tokens["read"]))
    assert got.status_code == 200


@pytest.mark.parametrize(
    ("token_name", "reason"),
    [("revoked", "revoked"), ("expired", "expired"), (None, "missing"), ("forged", "unknown")],
)
def test_missing_unknown_revoked_and_expired_keys_get_401(
    keyed: Keys, token_name: str | None, reason: str
) -> None:
    if token_name == "forged":
        real = keyed.tokens["admin"]
        token = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    else:
        token = keyed.tokens[token_name] if token_name else ""
    headers = bearer(token) if token else {}
    for path in ("/api/tasks", "/api/admin/stats", "/api/openapi.json"):
        response = keyed.client.get(path, headers=headers)
        error = error_of(response, 401)
        assert error["code"] == "unauthorized"
        assert error["details"] == {"reason": reason}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if token:
            assert token not in response.get_data(as_text=True)
            assert secret_of(token) not in response.get_data(as_text=True)
    # Health stays open for probes.
    assert keyed.client.get("/api/health", headers=headers).status_code == 200


def test_garbage_and_other_schemes_are_401_not_500(keyed: Keys) -> None:
    for header in (
        "Bearer sdk_",
        "Bearer sdk_zz_zz",
        "Bearer " + "x" * 5000,
        "Basic abc",
        "Bearer \u00e9",
    ):
        response = keyed.client.get("/api/tasks", headers={"Authorization": header})
        assert error_of(response, 401)["code"] == "unauthorized"


def test_the_bootstrap_token_is_an_admin_key_beside_the_keys(make_app: AppFactory) -> None:
    app = make_app(SWARM_API_TOKEN="bootstrap-secret")
    read = _create(app, "reader", ApiScope.READ)
    client = app.test_client()
    assert client.get("/api/admin/stats", headers=bearer("bootstrap-secret")).status_code == 200
    assert client.get("/api/tasks", headers=bearer(read)).status_code == 200
    error_of(client.get("/api/admin/stats", headers=bearer(read)), 403)
    assert auth.authenticate("bootstrap-secret", app) == auth.BOOTSTRAP


def test_creating_a_key_turns_auth_on_without_a_token(make_app: AppFactory) -> None:
    app = make_app()
    client = app.test_client()
    assert client.get("/api/tasks").status_code == 200
    _create(app, "first", ApiScope.READ)
    app.extensions["swarm_director"].auth.checked_at = float("-inf")  # skip the 1 s grace
    error_of(client.get("/api/tasks"), 401)


def test_authenticate_is_the_one_door(keyed: Keys) -> None:
    principal = auth.authenticate(keyed.tokens["write"], keyed.app)
    assert isinstance(principal, auth.Principal)
    assert (principal.name, principal.scope) == ("write", ApiScope.WRITE)
    assert auth.authenticate(keyed.tokens["revoked"], keyed.app) == auth.Refusal("revoked")
    assert auth.authenticate("not-a-key", keyed.app) == auth.Refusal("unknown")


def _last_used(app: Flask, name: str) -> object:
    with database(app).read() as session:
        return session.scalar(sa.select(ApiKey.last_used_at).where(ApiKey.name == name))


def test_last_used_is_written_at_most_once_a_minute(
    keyed: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    original = key_store.touch_last_used
    monkeypatch.setattr(
        key_store, "touch_last_used", lambda c, k, w: (writes.append(k), original(c, k, w))
    )
    for _ in range(5):
        keyed.client.get("/api/tasks", headers=bearer(keyed.tokens["read"]))
    assert len(writes) == 1
    assert _last_used(keyed.app, "read") is not None
    assert _last_used(keyed.app, "write") is None
    monkeypatch.setattr(auth, "LAST_USED_EVERY_S", 0.0)
    keyed.client.get("/api/tasks", headers=bearer(keyed.tokens["read"]))
    assert len(writes) == 2


def test_openapi_states_the_scope_of_every_operation(keyed: Keys) -> None:
    doc = keyed.client.get("/api/openapi.json", headers=bearer(keyed.tokens["read"])).get_json()
    seen = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path == "/api/health":
                assert "security" not in operation
                continue
            scope = operation["x-required-scope"]
            assert operation["security"] == [{"bearerAuth": [scope]}]
            assert f"scope `{scope}`" in operation["description"]
            seen[(method, path)] = scope
    assert seen[("get", "/api/tasks")] == "read"
    assert seen[("post", "/api/agents")] == "write"
    assert seen[("delete", "/api/agents/{agent_id}")] == "write"
    assert seen[("post", "/api/tasks/{task_id}/logs")] == "write"
    assert seen[("get", "/api/admin/stats")] == "admin"
    assert "scope" in doc["info"]["description"].lower()


def test_only_hashes_are_at_rest(keyed: Keys, dialect: str) -> None:
    url: URL = database(keyed.app).engine.url
    secrets_ = [secret_of(token) for token in keyed.tokens.values()]
    if dialect == "sqlite":
        database(keyed.app).dispose()  # checkpoint: every page in the main file
        path = sqlite_file(url)
        assert path is not None
        stored = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    else:
        done = subprocess.run(
            [
                find_tool("pg_dump", None),
                "--data-only",
                "--no-password",
                f"--dbname={url.database}",
            ],
            env=libpq_env(url),
            capture_output=True,
            check=True,
        )
        stored = done.stdout
    assert b"api_keys" in stored or dialect == "sqlite"
    for secret in secrets_:
        assert secret.encode() not in stored
    # What is there instead: each key's SHA-256.
    for secret in secrets_:
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
