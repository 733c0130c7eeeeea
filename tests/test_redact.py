"""Passwords in database URLs never reach a person: masked on every surface that prints a URL.

A URL carries a password in its userinfo or as a ``password=``/``sslpassword=`` query
parameter (libpq and psycopg accept both). The surfaces that need a database run on a real
PostgreSQL database whose URL has ``?password=`` added (trust auth ignores it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from swarm_director import create_app
from swarm_director.cli import serve
from swarm_director.cli.main import cli
from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.ops.pgtools import libpq_env
from swarm_director.redact import mask_urls, masked_url
from swarm_director.web.context import database
from tests.dbtools import fresh_database

SECRET = "hunter2-query-secret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u@h/db?password={SECRET}", "postgresql://u@h/db?password=***"),
        (f"postgresql://u@h/db?PassWord={SECRET}", "postgresql://u@h/db?PassWord=***"),
        (
            f"postgresql://u@h/db?sslmode=require&sslpassword={SECRET}",
            "postgresql://u@h/db?sslmode=require&sslpassword=***",
        ),
        (
            f"postgresql://u:{SECRET}@h/db?password={SECRET}&password=again",
            "postgresql://u:***@h/db?password=***",
        ),
        ("postgresql://u@h/db?options=-c%20x%3Dy", "postgresql://u@h/db?options=-c+x%3Dy"),
    ],
)
def test_masked_url_hides_every_password_a_url_carries(url: str, shown: str) -> None:
    assert masked_url(url) == shown
    assert masked_url(make_url(url)) == shown


def test_urls_in_text_are_masked_even_when_they_do_not_parse() -> None:
    text = (
        f"cannot reach postgresql://u:{SECRET}@h:notaport/db?Password={SECRET}&x=1 "
        f"nor postgresql://u@h/db?sslpassword={SECRET}"
    )
    masked = mask_urls(text)
    assert SECRET not in masked
    assert masked == (
        "cannot reach postgresql://u:***@h:notaport/db?Password=***&x=1 "
        "nor postgresql://u@h/db?sslpassword=***"
    )


def test_pg_tools_get_a_query_password() -> None:
    env = libpq_env(make_url(f"postgresql://u@h/db?password={SECRET}"))
    assert env["PGPASSWORD"] == SECRET


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_config_show_masks_a_query_password() -> None:
    url = f"postgresql://agent@db.example/swarm?password={SECRET}"
    code, out = run("config", "show", "--database-url", url)
    assert code == 0, out
    assert SECRET not in out
    assert "Database: postgresql://agent@db.example/swarm?password=***" in out
    code, out = run("config", "show", "--json", "--database-url", url)
    assert code == 0, out
    shown = {row["name"]: row["value"] for row in json.loads(out)}
    assert shown["DATABASE_URL"] == "postgresql://agent@db.example/swarm?password=***"


@pytest.fixture(scope="module")
def pg_url(pg_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database at head, its URL with a password given as a query parameter."""
    with fresh_database("postgresql", tmp_path_factory.mktemp("pg")) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url.update_query_dict({"password": SECRET}).render_as_string(hide_password=False)


def test_serve_banner_masks_a_query_password(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "run_gunicorn", lambda *_args, **_kwargs: None)
    code, out = run("serve", "--database-url", pg_url, "--port", "0")
    assert code == 0, out
    assert SECRET not in out
    assert "?password=*** (schema" in out


def test_db_status_masks_a_query_password(pg_url: str) -> None:
    code, out = run("db", "status", "--database-url", pg_url)
    assert code == 0, out
    assert SECRET not in out
    assert "password=***" in out.splitlines()[0]
    code, out = run("db", "status", "--json", "--database-url", pg_url)
    assert code == 0, out
    assert json.loads(out)["url"].endswith("?password=***")


def test_db_stats_masks_a_query_password(pg_url: str) -> None:
    code, out = run("db", "stats", "--database-url", pg_url)
    assert code == 0, out
    assert SECRET not in out
    assert "password=***" in out.splitlines()[0]


def test_errors_mask_a_query_password(pg_url: str) -> None:
    missing = make_url(pg_url).set(database="sdtest_absent_database").render_as_string(False)
    code, out = run("db", "status", "--database-url", missing)
    assert code == 1
    assert "does not exist" in out and "password=***" in out
    assert SECRET not in out


def test_db_backup_masks_a_query_password(pg_url: str, tmp_path: Path) -> None:
    code, out = run("db", "backup", "--dir", str(tmp_path), "--database-url", pg_url)
    assert code == 0, out
    assert out.startswith("Backed up postgresql") and "password=*** (" in out
    assert SECRET not in out
    for written in tmp_path.iterdir():
        assert SECRET.encode() not in written.read_bytes()


def test_console_overview_and_admin_stats_mask_a_query_password(pg_url: str) -> None:
    app = create_app({"DATABASE_URL": pg_url, "SWARM_API_TOKEN": None, "TESTING": True})
    try:
        client = app.test_client()
        page = client.get("/ui/")
        assert page.status_code == 200
        assert SECRET not in page.text
        assert "password=***" in page.text
        stats = client.get("/api/admin/stats")
        assert stats.status_code == 200
        assert SECRET not in stats.text  # it shows no URL today; it must not start leaking
    finally:
        database(app).dispose()
