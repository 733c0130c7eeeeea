"""The ops commands as a user runs them: output, exit status, --json, confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.ops.crypto.sdbkenc1 import new_key
from tests.ops.factory import insert_logs, small_dataset
from tests.ops.helpers import content, events


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, input=input)
    return result.exit_code, result.output


def _url(db_url: URL) -> str:
    return db_url.render_as_string(hide_password=False)


def test_check_reports_problems_and_exit_status(db: Database, db_url: URL) -> None:
    ids = small_dataset(db)
    code, out = run("db", "check", "--database-url", _url(db_url))
    assert code == 0, out
    assert "0 problem(s)" in out
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE agents SET parent_id = {ids['writer']} WHERE id = {ids['director']}"
        )
    code, out = run("db", "check", "--database-url", _url(db_url))
    assert code == 1
    assert f"[agent_cycle] agents #{min(ids['director'], ids['writer'])}" in out
    assert "Error: db check found 1 problem(s)" in out
    code, out = run("db", "check", "--json", "--database-url", _url(db_url))
    assert code == 1
    payload = json.loads(out[: out.rindex("}") + 1])
    assert payload["ok"] is False
    assert [p["rule"] for p in payload["problems"]] == ["agent_cycle"]
    assert [e[:2] for e in events(db.engine)][-3:] == [
        ("check", "ok"),
        ("check", "failed"),
        ("check", "failed"),
    ]


def test_backup_list_verify_restore(own_db: Database, tmp_path: Path) -> None:
    db, db_url = own_db, own_db.engine.url  # a restore re-creates the schema
    small_dataset(db, logs=10)
    before = content(db.engine)
    leftover = tmp_path / ".part-0123456789ab.raw"  # a killed backup's, held by no one
    leftover.write_bytes(b"partial")
    code, out = run("db", "backup", "--dir", str(tmp_path), "--database-url", _url(db_url))
    assert code == 0, out
    path = Path(out.strip().splitlines()[1])
    assert path.exists() and path.parent == tmp_path
    assert "Backed up" in out and "rows" in out
    assert f"Removed {leftover} (left by a backup that was killed)" in out
    assert not leftover.exists()

    code, out = run("db", "backups", "--dir", str(tmp_path), "--json")
    assert code == 0
    [entry] = json.loads(out)["backups"]
    assert entry["path"] == str(path) and entry["problem"] is None

    if db.dialect == "sqlite":  # (restore verifies too; one PostgreSQL staging is enough)
        code, out = run("db", "verify", str(path), "--database-url", _url(db_url))
        assert code == 0, out
        assert f"{path.name}: OK" in out

    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM agent_logs")
    code, out = run(
        "db",
        "restore",
        str(path),
        "--dir",
        str(tmp_path),
        "--database-url",
        _url(db_url),
        input="n\n",
    )
    assert code == 1 and "Aborted" in out
    assert content(db.engine) != before
    code, out = run(
        "db", "restore", str(path), "--yes", "--dir", str(tmp_path), "--database-url", _url(db_url)
    )
    assert code == 0, out
    assert "Restored" in out and "Safety backup" in out
    assert content(db.engine) == before


def test_refused_restore_is_one_line_error(db: Database, db_url: URL, tmp_path: Path) -> None:
    small_dataset(db, logs=3)
    _, out = run("db", "backup", "--dir", str(tmp_path), "--database-url", _url(db_url))
    path = Path(out.strip().splitlines()[1])
    path.write_bytes(path.read_bytes()[:100])
    code, out = run(
        "db", "restore", str(path), "-y", "--dir", str(tmp_path), "--database-url", _url(db_url)
    )
    assert code == 1
    assert out.startswith("Error: ") and "truncated" in out and out.count("\n") == 1
    assert "Traceback" not in out
    code, out = run("db", "verify", str(path), "--database-url", _url(db_url))
    assert code == 1 and "truncated" in out


# encryption layer is dialect-independent; covered in test_backup on both
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_encrypted_backup_needs_the_key(db: Database, db_url: URL, tmp_path: Path) -> None:
    small_dataset(db, logs=3)
    key = new_key()
    env = {"SWARM_BACKUP_KEY": key}
    code, out = run(
        "db", "backup", "--gzip", "--dir", str(tmp_path), "--database-url", _url(db_url), env=env
    )
    assert code == 0, out
    assert "gzip, encrypted" in out
    path = Path(out.strip().splitlines()[1])
    code, out = run(
        "db", "verify", str(path), "--database-url", _url(db_url), env={"SWARM_BACKUP_KEY": ""}
    )
    assert code == 1 and "is encrypted: set SWARM_BACKUP_KEY" in out
    code, out = run(
        "db",
        "verify",
        str(path),
        "--database-url",
        _url(db_url),
        env={"SWARM_BACKUP_KEY": new_key()},
    )
    assert code == 1 and "wrong backup key" in out
    code, out = run("db", "verify", str(path), "--database-url", _url(db_url), env=env)
    assert code == 0, out


def test_password_is_masked(tmp_path: Path) -> None:
    code, out = run("db", "check", "--database-url", "postgresql://admin:s3cret@127.0.0.1:1/none")
    assert code == 1
    assert "s3cret" not in out


def test_backup_key_legacy_prints_a_usable_key() -> None:
    code, out = run("db", "backup-key", "--legacy")
    assert code == 0
    from swarm_director.ops.crypto.sdbkenc1 import parse_key

    assert len(parse_key(out.strip())) == 32


# progress display is dialect-independent
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_progress_bars_only_on_a_terminal_and_never_with_json(
    db: Database, db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_director.cli import output

    ids = small_dataset(db, logs=0)
    insert_logs(db.engine, ids["task"], 20_000)  # several MiB: several steps to report
    args = ["db", "backup", "--dir", str(tmp_path), "--database-url", _url(db_url)]
    _, plain = run(*args)
    assert plain.startswith("Backed up") and len(plain.strip().splitlines()) == 2  # no bar
    monkeypatch.setattr(output, "is_interactive", lambda: True)
    clock = iter(range(0, 10_000, 5))  # every stage "lasts" longer than the 1 s threshold
    monkeypatch.setattr(output.time, "monotonic", lambda: next(clock))
    _, on_tty = run(*args)
    # Click draws the bars only on a real terminal; under the runner the stage labels show.
    assert on_tty.startswith("   backup\n checksum\nBacked up")
    _, as_json = run(*args, "--json")
    json.loads(as_json)  # nothing but the JSON document
