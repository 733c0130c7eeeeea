"""Every command that takes a path refuses an unusable one in one line and changes nothing.

Unusable paths: a folder that cannot exist (under /proc), a file standing where a folder is
needed, and a place nobody may write (/sys, where even root is refused).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from tests.ops.factory import insert_logs, small_dataset
from tests.ops.helpers import content


def _url(db_url: URL) -> str:
    return db_url.render_as_string(hide_password=False)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def setting(db: Database, db_url: URL, tmp_path: Path) -> dict[str, object]:
    """A database with old logs (so cleanups have work) and one good backup."""
    ids = small_dataset(db)
    insert_logs(db.engine, ids["task"], 30, age=timedelta(days=400))
    good = tmp_path / "good"
    result = CliRunner().invoke(
        cli, ["db", "backup", "--dir", str(good), "--database-url", _url(db_url)]
    )
    assert result.exit_code == 0, result.output
    backup = next(p for p in good.iterdir() if not p.name.endswith(".json"))
    (tmp_path / "afile").write_text("I am a file, not a folder\n")
    return {"url": _url(db_url), "backup": str(backup), "tmp": tmp_path}


BAD_FOLDERS = ["/proc/nope", "{tmp}/afile", "{tmp}/afile/sub", "/sys/nope"]
BAD_FILES = ["/proc/nope/x.jsonl.gz", "{tmp}/afile/x.jsonl.gz", "/sys/x.jsonl.gz"]

COMMANDS: list[tuple[str, list[str], list[str]]] = [
    ("backup --dir", ["db", "backup", "--dir", "{bad}"], BAD_FOLDERS),
    ("backups --dir", ["db", "backups", "--dir", "{bad}"], ["{tmp}/afile"]),
    ("verify FILE", ["db", "verify", "{bad}"], ["/proc/nope/x.sqlite3", "{tmp}/afile", "/sys"]),
    ("restore FILE", ["db", "restore", "-y", "{bad}"], ["/proc/nope/x.sqlite3", "{tmp}/afile"]),
    ("restore --dir", ["db", "restore", "-y", "--dir", "{bad}", "{backup}"], BAD_FOLDERS),
    (
        "cleanup-logs --archive",
        ["db", "cleanup-logs", "--older-than", "30d", "--archive", "{bad}", "--yes"],
        BAD_FILES,
    ),
    ("maintain --dir", ["db", "maintain", "--dir", "{bad}"], BAD_FOLDERS),
    (
        "maintain --archive-dir",
        ["db", "maintain", "--dir", "{tmp}/m", "--archive-dir", "{bad}", "--no-optimize"],
        BAD_FOLDERS,
    ),
    ("export-schema --docs-dir", ["db", "export-schema", "--docs-dir", "{bad}"], BAD_FOLDERS),
]


@pytest.mark.parametrize(("name", "args", "bad_paths"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_unusable_path_is_refused_in_one_line_and_changes_nothing(
    db: Database,
    setting: dict[str, object],
    name: str,
    args: list[str],
    bad_paths: list[str],
) -> None:
    tmp = setting["tmp"]
    assert isinstance(tmp, Path)
    before_rows = content(db.engine)
    for template in bad_paths:
        bad = template.format(tmp=tmp)
        argv = [a.format(bad=bad, tmp=tmp, backup=setting["backup"]) for a in args]
        if argv[:2] != ["db", "export-schema"]:
            argv += ["--database-url", str(setting["url"])]
        before_files = _files(tmp)
        result = CliRunner().invoke(cli, argv)
        lines = result.output.strip().splitlines()
        assert result.exit_code in (1, 2), f"{name} {bad}: {result.output}"
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), f"{name} {bad}: traceback {result.exception!r}"
        error = [line for line in lines if line.startswith("Error:")]
        assert len(error) == 1, f"{name} {bad}: {result.output}"
        if result.exit_code == 1:
            assert lines[-1] == error[0], f"{name} {bad}: more than one line: {result.output}"
        assert "Traceback" not in result.output
        # Nothing half-written beside the test's own files, no row changed.
        after_files = [f for f in _files(tmp) if not f.startswith("m/") and f != "m"]
        assert after_files == [f for f in before_files if not f.startswith("m/") and f != "m"]
        assert content(db.engine) == before_rows, f"{name} {bad} changed rows"
