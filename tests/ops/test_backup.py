"""db backup / backups: consistent snapshots with a manifest, layers, pruning, listing."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.ops.backup import temp_files
from swarm_director.ops.backup.create import (
    Manifest,
    create_backup,
    list_backups,
    manifest_path,
    prune,
    write_manifest,
)
from swarm_director.ops.backup.verify import staged_backup, verify_backup
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.crypto.sdbkenc1 import MAGIC, new_key, parse_key
from swarm_director.ops.errors import BackupKeyError
from tests.ops.factory import add_task, insert_logs, small_dataset
from tests.ops.helpers import events


def test_backup_writes_file_and_manifest(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=25)
    result = create_backup(db.engine, tmp_path / "backups")
    path = result.path
    assert result.manifest.sha256 == json.loads(manifest_path(path).read_text())["sha256"]
    assert path.parent == tmp_path / "backups"
    assert path.name.endswith(".sqlite3" if db.dialect == "sqlite" else ".pgdump")
    on_disk = json.loads(manifest_path(path).read_text())
    assert on_disk["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert on_disk["bytes"] == path.stat().st_size
    assert on_disk["dialect"] == db.dialect
    assert on_disk["row_counts"]["agent_logs"] == 25
    assert on_disk["row_counts"]["agents"] == 2
    assert on_disk["tool_version"]
    assert on_disk["created_at"].endswith("+00:00")
    assert events(db.engine)[-1][:2] == ("backup", "ok")
    if db.dialect == "sqlite":  # the file stands alone: no WAL needed beside it
        assert not Path(str(path) + "-wal").exists()
        # closing(): sqlite3's own context manager commits, it does not close.
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM agent_logs").fetchone() == (25,)
    else:
        assert path.read_bytes()[:5] == b"PGDMP"


_KILLED_MID_BACKUP = """
import os, signal, sys
from pathlib import Path
from swarm_director.ops.backup import temp_files
directory = Path(sys.argv[1])
with temp_files.claimed(directory) as token:
    (directory / f".part-{token}.raw").write_bytes(b"half a database" * 1000)
    print(token, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_next_backup_removes_what_a_killed_one_left_and_spares_a_live_one(
    db: Database, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_BACKUP, str(backups)], capture_output=True, text=True
    )
    assert killed.returncode == -9
    orphan = backups / f".part-{killed.stdout.strip()}.raw"
    assert orphan.exists()
    unrelated = backups / ".part-agent_logs-20261201.jsonl.gz"  # not a backup's data part
    unrelated.write_bytes(b"x")
    with temp_files.claimed(backups) as live_token:  # a backup still running in this folder
        live = backups / f".part-{live_token}.out"
        live.write_bytes(b"in progress")
        result = create_backup(db.engine, backups)
        assert live.exists()
    assert result.removed_leftovers == [orphan] and not orphan.exists()
    assert unrelated.exists()
    assert events(db.engine)[-1][:2] == ("backup", "ok")
    assert sorted(p.name for p in backups.iterdir() if p.name.startswith(".part-")) == sorted(
        [live.name, unrelated.name]
    )  # no lock files left behind either
    second = create_backup(db.engine, backups)  # the live one has ended without cleaning up
    assert second.removed_leftovers == [live] and not live.exists()


def test_a_backup_that_ends_while_leftovers_are_sought_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another backup lists a live one's part; the live one finishes (part renamed, lock
    # released) before its lock is tried: nothing was left over, so nothing is reported.
    live = temp_files.claimed(tmp_path)
    token = live.__enter__()
    part = tmp_path / f".part-{token}.raw"
    part.write_bytes(b"x")
    try_lock = temp_files._try_lock

    def finishing_first(path: Path) -> int | None:
        if part.exists():
            part.unlink()
            live.__exit__(None, None, None)
        return try_lock(path)

    monkeypatch.setattr(temp_files, "_try_lock", finishing_first)
    assert temp_files.remove_orphans(tmp_path) == []
    assert not any(tmp_path.iterdir())


def test_gzip_and_encryption_round_trip(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_dataset(db, logs=200)
    key = parse_key(new_key())
    result = create_backup(db.engine, tmp_path, compress=True, key=key)
    assert result.path.name.endswith(".gz.enc")
    assert result.path.read_bytes().startswith(MAGIC)
    assert result.manifest.compression == "gzip" and result.manifest.encryption
    assert b"log 1" not in result.path.read_bytes()
    report = verify_backup(result.path, target=db.engine.url, key=key)
    assert report.ok, report.reasons
    assert report.row_counts["agent_logs"] == 200
    with pytest.raises(BackupKeyError, match="SWARM_BACKUP_KEY"):
        verify_backup(result.path, target=db.engine.url, key=None)
    with pytest.raises(BackupKeyError, match="wrong backup key"):
        verify_backup(result.path, target=db.engine.url, key=parse_key(new_key()))


def test_malformed_key_is_refused() -> None:
    with pytest.raises(BackupKeyError, match="32 random bytes"):
        parse_key("too-short")


# pruning works on manifests only; one dialect suffices
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_prune_keeps_newest_and_recent(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=1)
    made = [create_backup(db.engine, tmp_path) for _ in range(4)]
    # Age the two oldest by 10 days.
    for old in made[:2]:
        manifest = Manifest.load(manifest_path(old.path))
        manifest.created_at = (manifest.created - timedelta(days=10)).isoformat()
        write_manifest(old.path, manifest)
    source = made[0].manifest.source
    assert prune(tmp_path, source, keep_last=None, keep_days=5) == [made[1].path, made[0].path]
    assert [e.path for e in list_backups(tmp_path)] == [m.path for m in made[2:]]
    newest = create_backup(db.engine, tmp_path, keep_last=1)
    assert newest.pruned == [made[3].path, made[2].path]
    assert [e.path for e in list_backups(tmp_path)] == [newest.path]


def test_listing_flags_unusable_backups(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=1)
    good = create_backup(db.engine, tmp_path)
    stray = tmp_path / "swarm-20260101T000000_000000Z.sqlite3"
    stray.write_bytes(os.urandom(100))
    gone = create_backup(db.engine, tmp_path)
    gone.path.unlink()
    listed = {e.path.name: e.problem for e in list_backups(tmp_path)}
    assert listed == {
        good.path.name: None,
        gone.path.name: "backup file is missing",
        stray.name: "no manifest (incomplete or foreign)",
    }


def test_backup_while_another_process_writes(db: Database, tmp_path: Path) -> None:
    """Rows committed before the backup started are all in it; the copy checks clean."""
    task = add_task(db)
    insert_logs(db.engine, task, 2000)
    progress = tmp_path / "writer.log"
    url = db.engine.url.render_as_string(hide_password=False)
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.ops.writer", url, str(task), str(progress), "20"],
        cwd=Path(__file__).parents[2],
    )
    try:
        deadline = time.monotonic() + 15
        while progress.read_text().count("\n") < 30 if progress.exists() else True:
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.05)
        committed = [int(line.split()[0]) for line in progress.read_text().splitlines()[1:]]
        result = create_backup(db.engine, tmp_path / "b")
        during = progress.read_text().count("\n")
    finally:
        Path(str(progress) + ".stop").touch()
        writer.wait(timeout=30)
    assert writer.returncode == 0
    after = progress.read_text().count("\n")
    assert after > during - 1 >= len(committed)  # the writer kept going throughout
    with staged_backup(result.path, target=db.engine.url, key=None) as staged:
        assert staged.report.ok, staged.report.reasons
        with staged.engine.connect() as conn:
            ids = set(conn.execute(sa.text("SELECT id FROM agent_logs")).scalars())
    assert len(ids) >= 2000 + len(committed)
    assert set(committed) <= ids
    assert run_check(db.engine).ok
