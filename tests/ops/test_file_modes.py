"""Backups, their manifests and temporary parts, restore staging and log archives are 0600;
the folders made for them 0700. On both dialects, under the usual umask (022)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.models import LogLevel
from swarm_director.ops.backup.create import create_backup, manifest_path
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.crypto.sdbkenc1 import new_key, parse_key
from swarm_director.ops.maintain import LOCK_NAME, maintenance_lock
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from tests.ops.factory import add_task, insert_logs, small_dataset

DAY = timedelta(days=1)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Mode of every file under ``folder`` (temporary parts and staging folders included)."""
    return {str(p.relative_to(folder)): mode(p) for p in sorted(folder.rglob("*")) if p.is_file()}


class Watcher:
    """A progress reporter that records the modes of the files under a folder at each call:
    what a backup, restore or archive has on disk while it works."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[str, int] = {}

    def __call__(self, _stage: str, _done: int, _total: int) -> None:
        self.seen.update(modes(self.folder))


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_db_backup_writes_private_files_into_a_private_folder(
    db: Database, db_url: URL, tmp_path: Path
) -> None:
    small_dataset(db, logs=5)
    folder = tmp_path / "backups" / "nightly"
    url = db_url.render_as_string(hide_password=False)
    for extra, env in (([], None), (["--gzip"], {"SWARM_BACKUP_KEY": new_key()})):
        args = ["db", "backup", "--dir", str(folder), "--database-url", url, *extra]
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    written = modes(folder)
    assert len(written) == 4  # two backups (plain, gzip+encrypted), two manifests
    assert written == dict.fromkeys(written, 0o600)


def test_a_backup_in_progress_keeps_its_parts_private(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=5)
    folder = tmp_path / "backups"
    folder.mkdir(mode=0o755)  # made by the user: left as it is
    watch = Watcher(folder)
    result = create_backup(
        db.engine, folder, compress=True, key=parse_key(new_key()), reporter=watch
    )
    parts = [name for name in watch.seen if name.startswith(".part-")]
    assert any(name.endswith(".raw") for name in parts)  # the plaintext copy
    assert any(name.endswith(".out") for name in parts)  # its encrypted form
    assert watch.seen == dict.fromkeys(watch.seen, 0o600)
    assert mode(result.path) == 0o600 and mode(manifest_path(result.path)) == 0o600
    assert mode(folder) == 0o755


def test_restore_stages_and_keeps_everything_private(own_db: Database, tmp_path: Path) -> None:
    small_dataset(own_db, logs=5)
    folder = tmp_path / "backups"
    backup = create_backup(own_db.engine, folder).path
    watch = Watcher(folder)
    report = restore_backup(own_db.engine, backup, backup_dir=folder, reporter=watch)
    staged = [name for name in watch.seen if name.startswith(".verify-")]
    assert staged  # the decoded copy the restore verified
    assert watch.seen == dict.fromkeys(watch.seen, 0o600)
    assert mode(report.safety_backup.path) == 0o600
    assert modes(folder) == dict.fromkeys(modes(folder), 0o600)


def test_a_log_archive_is_private_in_a_private_folder(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 30, age=60 * DAY, level=LogLevel.INFO)
    archive = tmp_path / "archives" / "2026" / "logs.jsonl.gz"
    watch = Watcher(tmp_path / "archives")
    report = cleanup_logs(
        db.engine, RetentionPolicy(older_than=30 * DAY), archive=archive, reporter=watch
    )
    assert report.archived == 30
    assert ".part-logs.jsonl.gz" in {Path(name).name for name in watch.seen}
    assert watch.seen == dict.fromkeys(watch.seen, 0o600)
    assert mode(archive) == 0o600
    assert mode(archive.parent) == 0o700 and mode(archive.parent.parent) == 0o700


def test_the_maintenance_lock_makes_the_backup_folder_private(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    with maintenance_lock(db.engine, folder):
        assert mode(folder) == 0o700
        assert mode(folder / LOCK_NAME) == 0o600
