"""Backup file names and folders as an attacker (or a typo) writes them.

``db backup --dir``, ``db backups --dir``, ``db verify FILE`` and ``db restore FILE`` get paths
with ``../``, paths to files that are not backups, and a backup folder seeded with crafted
manifests: one whose ``file`` points outside the folder, one with a garbage date, one whose
backup is a symlink to a file outside. Passing means: every command either works on what was
named or fails with one line; nothing is written, changed or deleted outside the backup folder
(the test compares every file under its directory, byte for byte, before and after); pruning
only ever deletes backups inside the folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from swarm_director.cli.main import cli
from swarm_director.db import make_engine
from swarm_director.migrations import migrate


def _tree(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    """Every file under ``root`` (but the ``skip`` subtrees) with its SHA-256."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(relative == s or relative.startswith(s + "/") for s in skip):
            continue
        if path.is_symlink():
            found[relative] = "symlink->" + str(path.readlink())
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    if result.exit_code == 2:  # a usage error (e.g. a folder for FILE): Click's usage lines
        assert lines[-1].startswith("Error: Invalid value"), result.output
        return lines[-1]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    """A database at head with one backup in ``site/backups`` and a victim file outside."""
    root = tmp_path / "site"
    (root / "backups").mkdir(parents=True)
    (root / "outside").mkdir()
    (root / "outside" / "victim.txt").write_text("must survive")
    db_path = root / "db" / "live.db"
    db_path.parent.mkdir()
    url = f"sqlite:///{db_path}"
    engine = make_engine(url)
    migrate.upgrade(engine, "head")
    engine.dispose()
    assert _run("db", "seed", "--database-url", url).exit_code == 0
    result = _run("db", "backup", "--database-url", url, "--dir", str(root / "backups"), "--json")
    assert result.exit_code == 0, result.output
    backup = Path(json.loads(result.output)["path"])
    return {"root": root, "url": url, "backup": backup, "backups": root / "backups"}


def test_traversal_in_backup_dir_writes_only_there(site: dict[str, Any]) -> None:
    root: Path = site["root"]
    before = _tree(root, skip=("db", "backups"))
    sneaky = root / "backups" / ".." / "backups" / "nested" / ".." / "other"
    result = _run("db", "backup", "--database-url", site["url"], "--dir", str(sneaky), "--json")
    assert result.exit_code == 0, result.output
    written = Path(json.loads(result.output)["path"])
    assert written.resolve().parent == (root / "backups" / "other").resolve()
    after = _tree(root, skip=("db", "backups"))
    assert after == before, "a backup wrote outside its folder"


def test_verify_and_restore_of_traversal_paths_fail_in_one_line(site: dict[str, Any]) -> None:
    root: Path = site["root"]
    before = _tree(root, skip=("db",))
    for name in [
        "../../../../../../etc/passwd",
        "../outside/victim.txt",
        "../../../../../../nonexistent/../backup.sqlite3",
        "..",
        "../outside",
    ]:
        target = str(site["backups"] / name)
        for command in (["db", "verify", target], ["db", "restore", target, "--yes"]):
            result = _run(*command, "--database-url", site["url"])
            line = _one_line_error(result)
            assert "Traceback" not in line
    assert _tree(root, skip=("db",)) == before, "verify/restore of a bad path wrote something"


def _crafted(site: dict[str, Any], name: str, **changes: Any) -> Path:
    """A copy of the real backup's manifest under another name, with ``changes``."""
    backup: Path = site["backup"]
    manifest = json.loads(backup.with_name(backup.name + ".manifest.json").read_text())
    manifest.update(changes)
    path = site["backups"] / f"{name}.manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_crafted_manifests_never_reach_outside(site: dict[str, Any]) -> None:
    root: Path = site["root"]
    backups: Path = site["backups"]
    victim = root / "outside" / "victim.txt"
    old = "2000-01-01T00:00:00+00:00"
    # Points its "file" outside the folder; the backup it names does not exist here.
    _crafted(site, "escape.sqlite3", file="../outside/victim.txt", created_at=old)
    # A garbage date must not break pruning (or every later backup with --keep-days).
    _crafted(site, "garbage.sqlite3", created_at="not-a-date")
    (backups / "garbage.sqlite3").write_bytes(site["backup"].read_bytes())
    # A backup that is a symlink to a file outside: pruning removes the link, not the target.
    _crafted(site, "linked.sqlite3", created_at=old)
    (backups / "linked.sqlite3").symlink_to(victim)
    # Wrong types where numbers and tables are expected.
    _crafted(site, "types.sqlite3", bytes="many", row_counts={"agents": "x"}, created_at=old)
    (backups / "types.sqlite3").write_bytes(b"x")
    outside_before = _tree(root, skip=("db", "backups"))

    listed = _run("db", "backups", "--database-url", site["url"], "--dir", str(backups))
    assert listed.exit_code == 0, (listed.output, listed.exception)
    for name in ("escape", "garbage", "types"):
        assert f"{name}.sqlite3" in listed.output

    for name in ("escape.sqlite3", "garbage.sqlite3", "types.sqlite3"):
        _one_line_error(_run("db", "verify", str(backups / name), "--database-url", site["url"]))

    result = _run(
        "db", "backup", "--database-url", site["url"], "--dir", str(backups), "--keep-days", "1"
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert not (backups / "linked.sqlite3").exists(), "an expired backup was not pruned"
    assert victim.read_text() == "must survive"
    assert _tree(root, skip=("db", "backups")) == outside_before
