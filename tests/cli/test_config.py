"""`swarm-director config show` / `config table`, and the one-home rule for settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_director.cli.config_cmd import settings_table
from swarm_director.cli.main import cli
from swarm_director.config import Settings

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "swarm_director"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SWARM_*/DATABASE_URL variables and an empty working directory (no .env)."""
    for name in list(__import__("os").environ):
        if name.startswith("SWARM_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def show(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["config", "show", *args])
    return result.exit_code, result.output


def rows(*args: str) -> dict[str, dict[str, object]]:
    code, out = show("--json", *args)
    assert code == 0, out
    return {row["name"]: row for row in json.loads(out)}


def test_fresh_install_shows_every_setting_from_its_default(clean_env: Path) -> None:
    shown = rows()
    assert set(shown) == {f.alias for f in Settings.model_fields.values()}
    assert {row["source"] for row in shown.values()} == {"default"}
    assert shown["SWARM_KEEP_LAST"]["value"] == 7
    assert shown["SWARM_LOG_RETENTION"]["value"] == "30d"
    code, out = show()
    assert code == 0
    assert "Database: sqlite:///database/data/swarm_director_dev.db" in out


def test_sources_environment_dotenv_and_option(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text("SWARM_POOL_SIZE=9\nSWARM_LOG_RETENTION=12h\n")
    monkeypatch.setenv("SWARM_LOG_RETENTION", "45d")  # the environment wins over .env
    shown = rows("--database-url", "postgresql://agent:hunter2@db.example/swarm")
    assert (shown["SWARM_POOL_SIZE"]["value"], shown["SWARM_POOL_SIZE"]["source"]) == (9, ".env")
    assert shown["SWARM_LOG_RETENTION"]["value"] == "45d"
    assert shown["SWARM_LOG_RETENTION"]["source"] == "environment"
    assert shown["DATABASE_URL"]["source"] == "option"
    assert shown["DATABASE_URL"]["value"] == "postgresql://agent:***@db.example/swarm"


def test_secrets_are_masked(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_API_TOKEN", "tok-very-secret-0123456789")
    monkeypatch.setenv("SWARM_BACKUP_KEY", "a2V5LXZlcnktc2VjcmV0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw-very-secret@h/db")
    for args in ((), ("--json",)):
        code, out = show(*args)
        assert code == 0
        assert "very-secret" not in out
        assert "***" in out


def test_works_under_production_without_a_database(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_ENV", "production")
    code, out = show()
    assert code == 0, out
    assert "SWARM_ENV" in out and "production  [environment]" in out
    assert "needs an explicit DATABASE_URL" in out


def test_an_invalid_setting_is_one_line_naming_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_POOL_SIZE", "many")
    code, out = show()
    assert code == 1
    assert out.strip().splitlines() == [out.strip().splitlines()[0]] and out.startswith(
        "Error: invalid setting SWARM_POOL_SIZE"
    )
    monkeypatch.setenv("SWARM_POOL_SIZE", "3")
    monkeypatch.setenv("SWARM_IDEMPOTENCY_TTL", "a week")
    code, out = show()
    assert code == 1 and "invalid setting SWARM_IDEMPOTENCY_TTL: invalid duration" in out


def test_readme_table_equals_the_settings() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, (
        "README.md's settings table differs from Settings: paste `swarm-director config table`"
    )


def test_only_config_reads_the_environment() -> None:
    reads = re.compile(r"os\.environ|os\.getenv|getenv\(|envvar=|dotenv")
    offenders = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative == "config.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            # Handing the whole environment to a child process (libpq's PG* variables) is
            # not reading a setting.
            if reads.search(line) and "dict(os.environ)" not in line:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
