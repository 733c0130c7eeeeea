"""`swarm-director keys`: the secret is printed once, never listed, and every change audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import make_engine
from tests.dbtools import fresh_database


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def url(dialect: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(dialect, tmp_path) as fresh:
        text = fresh.render_as_string(hide_password=False)
        assert run("db", "init", "--database-url", text)[0] == 0
        yield text


def _events(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT operation, details FROM maintenance_events "
                    "WHERE operation LIKE 'key_%' ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    return [
        (op, json.dumps(details) if not isinstance(details, str) else details)
        for op, details in rows
    ]


def test_create_list_revoke(url: str) -> None:
    code, out = run(
        "keys", "create", "agent-7", "--scope", "write", "--expires", "90d", "--database-url", url
    )
    assert code == 0, out
    token = next(line for line in out.splitlines() if line.startswith("sdk_"))
    assert "scope write" in out and "expires" in out

    code, listed = run("keys", "list", "--database-url", url)
    assert code == 0 and "agent-7" in listed and "active" in listed
    code, listed_json = run("keys", "list", "--json", "--database-url", url)
    rows = json.loads(listed_json)
    assert [(r["name"], r["scope"], r["status"]) for r in rows] == [("agent-7", "write", "active")]
    assert token[17:] not in listed + listed_json

    code, out = run("keys", "revoke", "agent-7", "--database-url", url)
    assert code == 0 and "Revoked" in out
    rows = json.loads(run("keys", "list", "--json", "--database-url", url)[1])
    assert rows[0]["status"] == "revoked" and rows[0]["revoked_at"]

    events = _events(url)
    assert [op for op, _ in events] == ["key_create", "key_revoke"]
    assert all("agent-7" in details and token[17:] not in details for _, details in events)


def test_mistakes_are_one_line_and_change_nothing(url: str) -> None:
    assert run("keys", "create", "a", "--scope", "read", "--database-url", url)[0] == 0
    for args, expected in [
        (("create", "a", "--scope", "admin"), "already exists"),
        (("create", "b c", "--scope", "read"), "invalid key name"),
        (("create", "b", "--scope", "root"), "Invalid value for '--scope'"),
        (("create", "b", "--scope", "read", "--expires", "soon"), "invalid duration"),
        (("revoke", "nobody"), "no API key named 'nobody'"),
    ]:
        code, out = run("keys", *args, "--database-url", url)
        assert code != 0 and expected in out, out
        assert "Traceback" not in out
    rows = json.loads(run("keys", "list", "--json", "--database-url", url)[1])
    assert [(r["name"], r["scope"]) for r in rows] == [("a", "read")]
    assert run("keys", "revoke", "a", "--database-url", url)[0] == 0
    code, out = run("keys", "revoke", "a", "--database-url", url)
    assert code == 1 and "already revoked" in out
    assert [op for op, _ in _events(url)] == ["key_create", "key_revoke"]
