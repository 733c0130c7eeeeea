"""Hostile input to the API: every id, query and body parameter of every operation.

The operations come from ``/api/openapi.json`` (so a new endpoint is attacked too). Each path
id gets SQL, path-traversal, negative, huge and non-numeric values; each query parameter and
each body field gets the hostile strings and numbers of ``hostile.py``; and every body
operation also gets raw bodies: oversized, nested 100,000 deep, invalid UTF-8, NaN/Infinity
literals, huge integers, not JSON at all. The app runs with auth on. The console's POST
routes (its actions) get each form field hostile, and forged tokens and origins.

Passing means: never a 5xx; every 4xx is the one JSON error shape; a refused request changed
no row of any table; an accepted one (hostile text is often valid text) stored exactly what
was sent — SQL metacharacters and paths are data, never code.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from swarm_director import create_app
from swarm_director.db import Base, make_engine
from swarm_director.schemas.filters import CLIENT_ARGS
from swarm_director.web.context import database, state
from tests.api.conftest import SHORT_STREAMS
from tests.dbtools import fresh_database
from tests.reliability import hostile
from tests.reliability.conftest import Figures, Scale, url_text
from tests.reliability.hostile import HOSTILE_NUMBERS, HOSTILE_TEXT

TOKEN = "hostile-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT_BYTES = 64 * 1024

#: What a response must never contain: tracebacks, SQLAlchemy's SQL dumps, driver names.
INTERNALS = ("Traceback", "[SQL:", "sqlalche.me", "psycopg", "sqlite3.", 'File "/')

HOSTILE_IDS = [
    quote("\u0661"),  # an Arabic-Indic digit one: int() reads it as 1
    quote("\uff11"),  # a fullwidth digit one
    "0",
    "-1",
    "2147483648",
    "9223372036854775808",
    "9" * 40,
    "1.5",
    "1e3",
    "NaN",
    "abc",
    quote("1 OR 1=1"),
    quote("1; DROP TABLE agents"),
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%00",
    "%ff",
    quote("\u0967"),  # a Devanagari digit one
]

#: A valid body per operation; hostile values are put into one field at a time.
BASE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/agents"): {"name": "n", "agent_type": "worker"},
    ("patch", "/api/agents/{agent_id}"): {"description": "d"},
    ("post", "/api/tasks"): {"type": "analysis", "title": "t"},
    ("patch", "/api/tasks/{task_id}"): {"description": "d"},
    ("post", "/api/tasks/{task_id}/logs"): {"agent_type": "a", "message": "m"},
    ("post", "/api/tasks/{task_id}/drafts"): {"content": "c"},
    ("patch", "/api/drafts/{draft_id}"): {"review_notes": "r"},
    ("post", "/api/tasks/{task_id}/emails"): {
        "recipient": "a@b.example",
        "subject": "s",
        "body": "b",
    },
    ("patch", "/api/emails/{email_id}"): {"body": "b"},
    ("post", "/api/conversations"): {"title": "t"},
    ("patch", "/api/conversations/{conversation_id}"): {"description": "d"},
    ("post", "/api/conversations/{conversation_id}/messages"): {"content": "c"},
    ("patch", "/api/messages/{message_id}"): {"content": "c"},
    ("post", "/api/conversations/{conversation_id}/participants"): {"agent_id": 2},
    ("post", "/api/tasks/claim"): {"agent_id": 1, "types": ["analysis"], "lease_s": 30},
    ("post", "/api/tasks/{task_id}/heartbeat"): {"lease_token": "t", "lease_s": 30},
    ("post", "/api/tasks/{task_id}/complete"): {"lease_token": "t", "result": {"n": 1}},
    ("post", "/api/tasks/{task_id}/fail"): {"lease_token": "t", "error": "e"},
    ("post", "/api/tasks/{task_id}/requeue"): {},
}

RAW_BODIES: list[tuple[str, bytes]] = [
    ("oversized", b'{"title": "' + b"x" * (LIMIT_BYTES + 10) + b'"}'),
    ("nested", b"[" * 100_000 + b"]" * 100_000),
    ("nested_object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("invalid_utf8", b'{"title": "\xff\xfe\xc3\x28", "name": "\xed\xa0\x80"}'),
    ("nan", b'{"title": NaN, "name": NaN, "content": NaN, "metadata": {"x": NaN}}'),
    ("infinity", b'{"config": {"x": Infinity}, "metadata": {"y": -Infinity}}'),
    ("huge_int", b'{"agent_id": 1' + b"0" * 5000 + b', "parent_id": 1' + b"0" * 40 + b"}"),
    ("not_json", b"title=x&name=y"),
    ("truncated", b'{"title": "x'),
    ("empty", b""),
    ("null", b"null"),
    ("array_of_junk", b'[1, "a", null, {"b": []}]'),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    tmp: Path = tmp_path_factory.mktemp("hostile_api")
    with fresh_database(request.param, tmp) as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        app = create_app(
            {
                "DATABASE_URL": url_text(url),
                "SWARM_API_TOKEN": TOKEN,
                "SWARM_DATA_DIR": str(tmp / "data"),
                "SWARM_MAX_REQUEST_BYTES": LIMIT_BYTES,
                # The module's app lives for minutes: a fold of the rollups' deltas would
                # move counts between tables, which the fingerprint takes for a change.
                "SWARM_ROLLUP_FOLD": "0s",
                **SHORT_STREAMS,
            }
        )
        _seed(app.test_client())
        try:
            yield app
        finally:
            database(app).dispose()


def _seed(client: FlaskClient) -> None:
    for url, body in [
        ("/api/agents", {"name": "boss", "agent_type": "supervisor"}),
        ("/api/agents", {"name": "writer", "agent_type": "worker"}),
        ("/api/tasks", {"type": "email_draft", "title": "seed"}),
        ("/api/tasks/1/logs", [{"agent_type": "director", "message": "hi"}]),
        ("/api/tasks/1/drafts", {"content": "v1"}),
        ("/api/tasks/1/emails", {"recipient": "a@b.example", "subject": "s", "body": "b"}),
        ("/api/conversations", {"title": "seed"}),
        ("/api/conversations/1/participants", {"agent_id": 1}),
        ("/api/conversations/1/messages", {"content": "hello", "sender_agent_id": 1}),
    ]:
        response = client.post(url, json=body, headers=AUTH)
        assert response.status_code == 201, response.get_json()


def _operations(app: Flask) -> list[tuple[str, str, dict[str, Any]]]:
    document = app.test_client().get("/api/openapi.json", headers=AUTH).get_json()
    return [
        (method, path, op)
        for path, ops in sorted(document["paths"].items())
        for method, op in sorted(ops.items())
    ]


def _components(app: Flask) -> dict[str, Any]:
    document = app.test_client().get("/api/openapi.json", headers=AUTH).get_json()
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


def _snapshot(app: Flask) -> list[tuple[Any, ...]]:
    """A fingerprint of every table: row count, highest id and latest change. An insert, a
    delete or an update (``updated_at`` follows every change) alters it. A table keyed by
    another column gives its highest key; one keyed by several (a report rollup's hour rows)
    the sum of its counts instead."""
    engine = database(app).engine
    with engine.execution_options(read_only=True).connect() as conn:
        return [tuple(row) for row in conn.execute(_snapshot_statement())]


@functools.cache
def _snapshot_statement() -> sa.CompoundSelect:
    """The statement of :func:`_snapshot`, built once: building it took half of the console
    test's time (a few thousand snapshots)."""
    parts = []
    for table in Base.metadata.sorted_tables:
        if table.name == "statement_timings":
            continue  # the service's own bookkeeping of how long statements took, not data
        changed = table.c.get("updated_at", table.c.get("created_at"))
        columns = [sa.func.count(), _highest_key(table)]
        if changed is not None:
            columns.append(sa.func.max(changed))
        parts.append(sa.select(sa.literal(table.name), *columns, *[sa.null()] * (3 - len(columns))))
    return sa.union_all(*parts)


def _highest_key(table: sa.Table) -> Any:
    """The highest id, or the highest of a one-column key (``task_attempts``' claim id);
    for a rollup's hour rows (a key of several columns), the sum of its counts."""
    key = list(table.primary_key.columns)
    if "id" in table.c or len(key) == 1:
        return sa.func.max(table.c.id if "id" in table.c else key[0])
    return _sum(table)


def _sum(table: sa.Table) -> Any:
    """The sum of a rollup table's count (its one integer column outside the key)."""
    [count] = [c for c in table.c if not c.primary_key and isinstance(c.type, sa.Integer)]
    return sa.func.sum(count)


def _fill(path: str, hostile: tuple[str, str] | None = None) -> str:
    """The path with every id 1, or one of them replaced by a hostile value."""
    for name in ("agent_id", "task_id", "draft_id", "email_id", "conversation_id", "message_id"):
        value = hostile[1] if hostile and hostile[0] == name else "1"
        path = path.replace("{" + name + "}", value)
    return path.replace("{version}", hostile[1] if hostile and hostile[0] == "version" else "1")


class Attack:
    """Sends one request and checks the outcome against the promises above."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.dialect = database(app).dialect
        self.client = app.test_client()
        self.tried = 0
        self.refused = 0
        self.accepted = 0

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        sent: tuple[str, Any] | None = None,
    ) -> int:
        mutating = method != "get"
        before = _snapshot(self.app) if mutating else None
        kwargs: dict[str, Any] = {"headers": AUTH}
        if raw is not None:
            kwargs.update(data=raw, content_type=content_type)
        elif body is not None:
            kwargs.update(data=json.dumps(body), content_type=content_type)
        response = self.client.open(url, method=method.upper(), **kwargs)
        self.tried += 1
        status = response.status_code
        text = response.get_data(as_text=True)
        # What a WSGI server does after sending a body: a live-tail stream holds one of the
        # server's stream slots until its response is closed.
        response.close()
        what = f"{method.upper()} {url[:120]} {str(sent)[:80]}"
        assert status < 500, f"{what} -> {status} {text[:300]}"
        if status >= 400:
            leaks = [m for m in INTERNALS if m in text]
            assert not leaks, f"{what} leaked {leaks}: {text[:300]}"
            self.refused += 1
            error = response.get_json()
            assert error is not None and set(error) == {"error"}, f"{what} -> {text[:200]}"
            assert set(error["error"]) == {"code", "message", "details"}, text[:200]
            if before is not None:
                assert _snapshot(self.app) == before, f"{what} was refused but changed rows"
        else:
            self.accepted += 1
            if sent is not None and isinstance(sent[1], str) and status in (200, 201):
                echoed = response.get_json()
                if isinstance(echoed, dict) and sent[0] in echoed:
                    assert echoed[sent[0]] == sent[1].strip() or echoed[sent[0]] == sent[1], (
                        f"{what}: stored {echoed[sent[0]]!r}"
                    )
        return status

    def figures(self) -> dict[str, int]:
        return {"tried": self.tried, "refused": self.refused, "accepted": self.accepted}


def _pick(values: list[Any], scale: Scale, quick: int = 8) -> list[Any]:
    """All values in the full run; about ``quick`` of them, spread over the list, otherwise."""
    return values if scale.full else values[:: max(1, len(values) // quick)]


def test_hostile_path_ids(app: Flask, scale: Scale, figures: Figures) -> None:
    attack = Attack(app)
    for method, path, op in _operations(app):
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        for name in names:
            for value in _pick(HOSTILE_IDS, scale):
                body = BASE_BODIES.get((method, path))
                status = attack.send(method, _fill(path, (name, value)), body=body)
                assert status in (400, 404, 405, 422), (method, path, name, value, status)
    figures.record(f"hostile_api_ids_{attack.dialect}", attack.figures())


def test_hostile_query_parameters(app: Flask, scale: Scale, figures: Figures) -> None:
    attack = Attack(app)
    values = [quote(str(v), safe="") for v in HOSTILE_TEXT + HOSTILE_NUMBERS] + ["%ff%fe", "%00"]
    for method, path, op in _operations(app):
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
        for name in names:
            for value in _pick(values, scale, quick=4):
                attack.send(method, f"{_fill(path)}?{name}={value}")
    figures.record(f"hostile_api_query_{attack.dialect}", attack.figures())


def _body_fields(components: dict[str, Any], ref: str) -> list[str]:
    schema = components[ref.rsplit("/", 1)[1]]
    properties = schema.get("properties") or {}
    return sorted(properties)


def test_hostile_body_fields(app: Flask, scale: Scale, figures: Figures) -> None:
    attack = Attack(app)
    components = _components(app)
    hostile: list[Any] = [*HOSTILE_TEXT, *HOSTILE_NUMBERS, None, [], {}, ["x"], {"a": 1}]
    for method, path, op in _operations(app):
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        base = BASE_BODIES[(method, path)]
        ref = content["schema"].get("$ref", "")
        fields = _body_fields(components, ref) if ref.endswith(("Create", "Update")) else []
        fields = fields or sorted(base)
        for field in fields:
            for value in _pick(hostile, scale, quick=4):
                if isinstance(value, float) and value != value:
                    continue  # NaN is sent as a raw literal in test_hostile_raw_bodies
                body = {**base, field: value}
                if isinstance(value, float) and abs(value) == float("inf"):
                    continue
                attack.send(method, _fill(path), body=body, sent=(field, value))
    figures.record(f"hostile_api_bodies_{attack.dialect}", attack.figures())


def test_hostile_raw_bodies(app: Flask, figures: Figures) -> None:
    attack = Attack(app)
    for method, path, op in _operations(app):
        if "requestBody" not in op:
            continue
        for name, raw in RAW_BODIES:
            status = attack.send(method, _fill(path), raw=raw, sent=(name, None))
            assert status in (400, 404, 409, 413, 415, 422), (method, path, name, status)
        status = attack.send(
            method, _fill(path), raw=b'{"a": 1}', content_type="text/plain", sent=("type", None)
        )
        assert status == 415, (method, path, status)
    figures.record(f"hostile_api_raw_{attack.dialect}", attack.figures())


# -- the probe's cases (issue 18): each runs whole in the quick run and in the full run -----


def _body_models(components: dict[str, Any], op: dict[str, Any]) -> list[str]:
    """The Create/Update models an operation's body is made of (a log ingest: LogCreate)."""
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return []
    names = re.findall(r"#/components/schemas/(\w+)", json.dumps(content["schema"]))
    for name in list(names):  # one level down: LogIngest is LogCreate or a list of them
        names += re.findall(r"#/components/schemas/(\w+)", json.dumps(components[name]))
    return sorted({name for name in names if name.endswith(("Create", "Update"))})


def _fields_mentioning(app: Flask, kind: str) -> list[tuple[str, str, str]]:
    """(method, path, field) of every body field whose schema mentions ``kind``."""
    components = _components(app)
    found = []
    for method, path, op in _operations(app):
        for model in _body_models(components, op):
            for name, spec in components[model].get("properties", {}).items():
                if kind in json.dumps(spec):
                    found.append((method, path, name))
    return found


def _date_time_fields(app: Flask) -> list[tuple[str, str, str, str]]:
    """(method, path, "query" or "body", name) of every date-time parameter and body field."""
    found = [
        (method, path, "query", parameter["name"])
        for method, path, op in _operations(app)
        for parameter in op.get("parameters", [])
        if parameter["in"] == "query" and "date-time" in json.dumps(parameter["schema"])
    ]
    return found + [(m, p, "body", name) for m, p, name in _fields_mentioning(app, "date-time")]


def test_overflowing_timestamps_everywhere(app: Flask, figures: Figures) -> None:
    attack = Attack(app)
    fields = _date_time_fields(app)
    assert len(fields) >= 9, fields  # since/until of four reads, a log's timestamp
    for method, path, where, name in fields:
        for value in hostile.OVERFLOWING_TIMESTAMPS:
            if where == "query":
                status = attack.send(method, f"{_fill(path)}?{name}={quote(value)}")
            else:
                body = {**BASE_BODIES[(method, path)], name: value}
                status = attack.send(method, _fill(path), body=body, sent=(name, value))
                batch = attack.send(method, _fill(path), body=[body], sent=(name, value))
                assert batch == 422, (method, path, name, value, batch)
            assert status == 422, (method, path, name, value, status)
    figures.record(f"hostile_api_timestamps_{attack.dialect}", attack.figures())


def _free_form_fields(app: Flask) -> list[tuple[str, str, str]]:
    """(method, path, field) of every object-valued field of a request body."""
    return _fields_mentioning(app, '"type": "object"')


def test_huge_free_form_json_everywhere(app: Flask, figures: Figures) -> None:
    """Every metadata/config field of every body gets documents past each limit: refused with
    a 413 (body size or value count) or a 422 naming the field, nothing stored."""
    attack = Attack(app)
    fields = _free_form_fields(app)
    assert len(fields) >= 7, fields
    limits = state(app).settings
    documents = hostile.huge_documents(limits.max_json_items, limits.max_json_bytes)
    for method, path, name in fields:
        for kind, document in documents.items():
            body = {**BASE_BODIES[(method, path)], name: document}
            status = attack.send(method, _fill(path), body=body, sent=(kind, None))
            assert status in (413, 422), (method, path, name, kind, status)
    figures.record(f"hostile_api_huge_json_{attack.dialect}", attack.figures())


def test_a_body_of_too_many_values_is_refused_before_parsing(app: Flask, figures: Figures) -> None:
    """The same database behind an app whose body value limit a 64 KiB body can pass."""
    settings = state(app).settings
    strict = create_app(
        {
            "DATABASE_URL": url_text(database(app).engine.url),
            "SWARM_API_TOKEN": TOKEN,
            "SWARM_DATA_DIR": str(settings.data_dir),
            "SWARM_MAX_REQUEST_BYTES": LIMIT_BYTES,
            "SWARM_MAX_REQUEST_VALUES": 2_000,
        }
    )
    try:
        attack = Attack(strict)
        flood = b'{"metadata": {"a": [' + b",".join([b"{}"] * 3_000) + b"]}}"
        for method, path, _name in _free_form_fields(strict):
            status = attack.send(method, _fill(path), raw=flood, sent=("flood", None))
            assert status == 413, (method, path, status)
        figures.record(f"hostile_api_value_flood_{attack.dialect}", attack.figures())
    finally:
        database(strict).dispose()


def _console_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    form = client.get("/ui/login").get_data(as_text=True)
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/ui/login", data={"key": TOKEN, "csrf": csrf, "next": "/ui/"})
    assert response.status_code == 302 and response.headers["Location"] == "/ui/"
    return client


def test_console_routes_with_a_repeated_path_id(app: Flask, figures: Figures) -> None:
    """Every console route with an id in its path, with each id repeated as a query
    parameter (real, missing, hostile): never a 5xx."""
    client = _console_client(app)
    tried = 0
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        and rule.arguments
        and "GET" in rule.methods
        and rule.endpoint != "console.static"
    ]
    assert len(rules) >= 4, rules
    values = ["1", "2", "5", "424242", *HOSTILE_IDS, quote("\r\nx")]
    for rule in rules:
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", "1")
        for name in rule.arguments:
            for value in values:
                response = client.get(f"{url}?{name}={value}")
                tried += 1
                assert response.status_code < 500, (url, name, value, response.status_code)
    figures.record(f"hostile_console_path_ids_{database(app).dialect}", {"tried": tried})


def test_console_login_next_is_never_a_header_break(app: Flask, figures: Figures) -> None:
    tried = 0
    for target in hostile.HOSTILE_NEXT:
        client = app.test_client()
        form = client.get(f"/ui/login?next={quote(target)}")
        assert form.status_code == 200, (target, form.status_code)
        csrf = form.get_data(as_text=True).split('name="csrf" value="', 1)[1].split('"', 1)[0]
        posted = client.post("/ui/login", data={"key": TOKEN, "csrf": csrf, "next": target})
        tried += 2
        location = posted.headers.get("Location", "")
        assert posted.status_code == 302, (target, posted.status_code)
        assert location.startswith("/ui/") and location.isprintable(), (target, location)
        assert "evil" not in location
        cookies = posted.headers.getlist("Set-Cookie")
        assert all(c.startswith("swarm_console=") for c in cookies), (target, cookies)
    figures.record(f"hostile_console_next_{database(app).dialect}", {"tried": tried})


#: Every field a console form sends (the actions' own and the task list's filters).
CONSOLE_FIELDS = [
    "seen",
    "reason",
    "priority",
    "agent_id",
    "status",
    "decision",
    "notes",
    "name",
    "scope",
    "expires",
    "ids",
    "back",
    "type",
    "user_id",
    "q",
]
#: Console actions left out of the field flood: it would take a backup per value (into the
#: server's default backup folder); it gets the refusals below like every other route.
NO_FLOOD = {"console.backup_now"}


def _console_posts(app: Flask) -> list[tuple[str, str]]:
    """(endpoint, path with every id 1) of each console POST route that acts."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or "POST" not in (rule.methods or ()):
            continue
        if rule.endpoint in ("console.login", "console.logout"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", "1")
        found.append((rule.endpoint, path))
    return sorted(found)


#: A valid form of each action (the hostile value then replaces one field of it), so that a
#: hostile value reaches the store, not only the first field check.
CONSOLE_FORMS: dict[str, dict[str, str]] = {
    "console.fail_task": {"reason": "stopped by hand"},
    "console.change_priority": {"priority": "high"},
    "console.assign_task": {"agent_id": "2"},
    "console.set_agent_status": {"status": "offline"},
    "console.review_draft": {"decision": "send_back", "notes": "again"},
    "console.create_key": {"name": "hostile-made", "scope": "read", "expires": "1d"},
    "console.revoke_key": {"name": "nobody"},
    "console.retry_tasks": {"type": "analysis", "ids": "1"},
}
#: The row whose change stamp (``seen``) a route's form carries.
STAMPED = {"tasks": "tasks", "agents": "agents", "drafts": "drafts"}


def _fields_of(endpoint: str) -> list[str]:
    """The fields ``endpoint`` reads (its form's, the stamp and the way back); the bulk retry
    reads the task list's filters too."""
    if endpoint == "console.retry_tasks":
        return CONSOLE_FIELDS
    return ["seen", "back", *CONSOLE_FORMS.get(endpoint, {})]


def _seen(app: Flask, path: str) -> str:
    """The current change stamp of the row ``path`` acts on (none: "")."""
    parts = path.strip("/").split("/")  # ui, tasks, 1, retry
    if len(parts) < 4 or parts[1] not in STAMPED or not parts[2].isdigit():
        return ""
    table = Base.metadata.tables[STAMPED[parts[1]]]
    with database(app).engine.connect() as conn:
        found = conn.execute(sa.select(table.c.updated_at).where(table.c.id == int(parts[2])))
        stamp = found.scalar()
    return stamp.isoformat() if stamp is not None else "x"


def _check_console(response: Any, what: str, before: Any, app: Flask) -> int:
    status: int = response.status_code
    text = response.get_data(as_text=True)
    assert status < 500, f"{what} -> {status} {text[:300]}"
    leaks = [m for m in INTERNALS if m in text]
    assert not leaks, f"{what} leaked {leaks}: {text[:300]}"
    if status >= 400:
        assert text.count('class="error"') == 1, f"{what}: not one plain message: {text[:300]}"
        assert _snapshot(app) == before, f"{what} was refused but changed rows"
    return status


def test_console_actions_with_hostile_forms(app: Flask, scale: Scale, figures: Figures) -> None:
    """Every console POST route with each form field hostile (and confirmed), with the
    session's CSRF token and Origin: never a 5xx, one plain message, a refusal changes
    nothing. Then without the token, with a wrong one, and from a foreign Origin: always
    403, nothing changed."""
    client = _console_client(app)
    csrf = client.get("/ui/").get_data(as_text=True).split('name="csrf" value="', 1)[1]
    csrf = csrf.split('"', 1)[0]
    origin = {"Origin": "http://localhost"}
    routes = _console_posts(app)
    assert len(routes) >= 10, routes
    values: list[Any] = [
        *_pick(HOSTILE_TEXT, scale),
        *_pick(HOSTILE_NUMBERS, scale),
        *HOSTILE_IDS[:4],
    ]
    tried = accepted = 0
    # A refusal changes nothing (checked after each): the rows, and the stamp of the row a
    # route acts on, are read again only after an action was accepted.
    before = _snapshot(app)
    for endpoint, path in routes:
        for url in (path, path.replace("/1/", "/424242/")):
            seen = _seen(app, url)
            for field in [] if endpoint in NO_FLOOD else _fields_of(endpoint):
                for value in values:
                    form = {
                        **CONSOLE_FORMS.get(endpoint, {}),
                        "seen": seen,
                        "csrf": csrf,
                        "confirmed": "yes",
                        field: str(value),
                    }
                    response = client.post(url, data=form, headers=origin)
                    tried += 1
                    what = f"POST {url} {field}={str(value)[:40]!r}"
                    if _check_console(response, what, before, app) < 400:
                        accepted += 1
                        before, seen = _snapshot(app), _seen(app, url)
            for form, headers in [
                ({"confirmed": "yes"}, origin),
                ({"csrf": "x" * 32, "confirmed": "yes"}, origin),
                ({"csrf": csrf, "confirmed": "yes"}, {"Origin": "http://evil.example"}),
                ({"csrf": csrf, "confirmed": "yes"}, {"Origin": "null"}),
                ({"csrf": csrf, "confirmed": "yes"}, {}),
            ]:
                response = client.post(url, data=form, headers=headers)
                tried += 1
                assert response.status_code == 403, (url, form, headers, response.status_code)
                _check_console(response, f"POST {url} forged {headers}", before, app)
    figures.record(
        f"hostile_console_posts_{database(app).dialect}", {"tried": tried, "accepted": accepted}
    )


def test_console_filters_of_every_listing_page(app: Flask, scale: Scale, figures: Figures) -> None:
    """Every console page without an id in its path (the lists, the activity page, the queue)
    gets every listing filter's name, and the paging parameters, with hostile values: never a
    5xx, and a refused one leaks no internals."""
    client = _console_client(app)
    names = sorted(
        {name for model in CLIENT_ARGS for name in model.filter_names()}
        | {"after", "before", "limit", "order", "cursor", "range"}
    )
    pages = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        and not rule.arguments
        and "GET" in rule.methods
        and not rule.rule.startswith(("/ui/login", "/ui/logout", "/ui/static"))
    )
    assert {"/ui/activity", "/ui/tasks", "/ui/logs", "/ui/queue"} <= set(pages), pages
    values = [quote(str(v), safe="") for v in HOSTILE_TEXT + HOSTILE_NUMBERS] + ["%ff%fe", "%00"]
    tried = 0
    for page in pages:
        for name in names:
            for value in _pick(values, scale, quick=4):
                response = client.get(f"{page}?{name}={value}")
                tried += 1
                status = response.status_code
                assert status < 500, (page, name, value, status)
                if status >= 400:  # a page may name its driver (the overview shows the URL)
                    text = response.get_data(as_text=True)
                    leaks = [m for m in INTERNALS if m in text]
                    assert not leaks, (page, name, value, leaks)
    figures.record(f"hostile_console_filters_{database(app).dialect}", {"tried": tried})


def test_hostile_request_ids_are_replaced_before_the_history_keeps_them(
    app: Flask, figures: Figures
) -> None:
    """A client's ``X-Request-ID`` is kept in the history only when it is a short plain token;
    any other value (SQL, CR/LF, control characters, too long) is replaced by a fresh id, which
    the response echoes and the history row carries."""
    client = app.test_client()
    plain = re.compile(r"[A-Za-z0-9._:-]{1,64}")
    values = [*(v for v in HOSTILE_TEXT if isinstance(v, str)), "a" * 65, "a" * 64, "req-1:2.3"]
    sent = 0
    for n, value in enumerate(values):
        try:
            response = client.post(
                "/api/agents",
                json={"name": f"request-id-{n}", "agent_type": "worker"},
                headers={**AUTH, "X-Request-ID": value},
            )
        except ValueError:  # werkzeug refuses to send a header with CR/LF or NUL at all
            continue
        sent += 1
        assert response.status_code == 201, (value, response.status_code)
        echoed = response.headers["X-Request-ID"]
        assert plain.fullmatch(echoed), (value, echoed)
        if plain.fullmatch(value):
            assert echoed == value
        else:
            assert echoed != value
        agent_id = response.get_json()["id"]
        rows = client.get(f"/api/agents/{agent_id}/history", headers=AUTH).get_json()["items"]
        assert [row["request_id"] for row in rows] == [echoed], (value, rows)
    assert sent >= len(values) - 4, sent
    figures.record(f"hostile_request_ids_{database(app).dialect}", {"tried": sent})
