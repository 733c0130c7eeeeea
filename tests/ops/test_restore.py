"""db verify / db restore: verified first, refused files change nothing, swaps are atomic."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.ops.backup.create import Manifest, create_backup, list_backups, manifest_path
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.dbinfo import head_revision
from swarm_director.ops.errors import BackupError, CorruptBackupError, ToolError
from swarm_director.store import queue
from tests.ops.factory import add_task, insert_logs, small_dataset
from tests.ops.helpers import content, events


def _rewrite_manifest(path: Path, **changes: object) -> None:
    manifest = Manifest.load(manifest_path(path))
    for name, value in changes.items():
        setattr(manifest, name, value)
    manifest_path(path).write_text(__import__("json").dumps(manifest.as_dict()))


def test_restore_round_trip_with_safety_backup(own_db: Database, tmp_path: Path) -> None:
    db = own_db  # a restore re-creates the schema: not on the shared test database
    ids = small_dataset(db, logs=30)
    with db.transaction() as s:  # a queue attempt: task_attempts, kept by triggers
        (claim,) = queue.claim_tasks(s, ids["writer"])
        queue.complete_task(s, claim.task.id, claim.lease_token)
    before = content(db.engine)
    backup = create_backup(db.engine, tmp_path)
    insert_logs(db.engine, ids["task"], 12)
    with db.transaction() as s:
        s.execute(sa.text("DELETE FROM email_messages"))
    changed = content(db.engine)

    report = restore_backup(db.engine, backup.path, backup_dir=tmp_path)

    assert content(db.engine) == before
    assert len(before["history"]) >= 5  # the history travels with the backup
    # ...and the attempts with it: restored once, not derived again on top by the triggers
    assert len(before["task_attempts"]) == 1
    safety = report.safety_backup
    assert safety.manifest.kind == "pre-restore"
    assert safety.manifest.row_counts["agent_logs"] == 42
    assert safety.manifest.row_counts["email_messages"] == 0
    op, status, details = events(db.engine)[-1]
    assert (op, status) == ("restore", "ok")
    assert details["safety_backup"] == str(safety.path)
    if db.dialect == "sqlite":  # (a second PostgreSQL restore would only repeat the first)
        # The safety backup brings the pre-restore state back.
        restore_backup(db.engine, safety.path, backup_dir=tmp_path)
        assert content(db.engine) == changed


def _truncated(db: Database, backup: Path, tmp_path: Path) -> tuple[Path, str]:
    data = backup.read_bytes()
    backup.write_bytes(data[: len(data) // 2])
    return backup, "truncated"


def _random(db: Database, backup: Path, tmp_path: Path) -> tuple[Path, str]:
    stray = tmp_path / "random.sqlite3"
    stray.write_bytes(os.urandom(50_000))
    return stray, "not a swarm-director backup"


def _foreign(db: Database, backup: Path, tmp_path: Path) -> tuple[Path, str]:
    # Random bytes dressed up with a manifest that matches them: caught by the format check.
    data = os.urandom(50_000)
    backup.write_bytes(data)
    _rewrite_manifest(backup, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    return backup, "is not a"


def _flipped_byte(db: Database, backup: Path, tmp_path: Path) -> tuple[Path, str]:
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))
    return backup, "damaged"


def _newer_schema(db: Database, backup: Path, tmp_path: Path) -> tuple[Path, str]:
    # The live database gets its revision back afterwards: on PostgreSQL it is the session's
    # shared test database, and later tests (GET /api/ready) need it at head.
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)"
        )
        revisions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        conn.exec_driver_sql("DELETE FROM alembic_version")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('999_from_the_future')")
    newer = create_backup(db.engine, tmp_path / "newer").path
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
        for revision in revisions:
            conn.execute(sa.text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    return newer, "unknown to this version"


@pytest.mark.parametrize(
    "damage",
    [_truncated, _random, _foreign, _flipped_byte, _newer_schema],
    ids=lambda f: f.__name__,
)
def test_unusable_backup_is_refused_and_live_database_untouched(
    db: Database, tmp_path: Path, damage: object
) -> None:
    small_dataset(db, logs=40)
    backup = create_backup(db.engine, tmp_path).path
    assert callable(damage)
    target, reason = damage(db, backup, tmp_path)
    before = content(db.engine)
    events_before = events(db.engine)
    listed_before = [e.path for e in list_backups(tmp_path)]

    with pytest.raises(CorruptBackupError, match=reason):
        restore_backup(db.engine, target, backup_dir=tmp_path)

    assert content(db.engine) == before
    new_events = events(db.engine)[len(events_before) :]
    assert [(op, status) for op, status, _ in new_events] == [("restore", "failed")]
    assert reason in new_events[0][2]["error"]
    assert [e.path for e in list_backups(tmp_path)] == listed_before  # no safety backup taken


def test_interrupted_restore_leaves_live_database_as_it_was(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 6000)
    backup = create_backup(db.engine, tmp_path).path
    with db.transaction() as s:
        s.execute(sa.text("DELETE FROM agent_logs WHERE id % 2 = 0"))
    before = content(db.engine)

    if db.dialect == "sqlite":

        def crash_midway(stage: str, done: int, total: int) -> None:
            if stage == "restore" and 0 < done < total:
                raise OSError("simulated crash midway through the copy")

        with pytest.raises(OSError, match="simulated crash"):
            restore_backup(db.engine, backup, backup_dir=tmp_path, reporter=crash_midway)
    else:
        # A session holding a lock on a table pg_restore must drop: it fails midway, after
        # earlier drops in its transaction, and everything rolls back.
        blocker = db.engine.connect()
        blocker.exec_driver_sql("SELECT count(*) FROM agents").all()
        try:
            with pytest.raises(ToolError, match="rolled back"):
                restore_backup(db.engine, backup, backup_dir=tmp_path, lock_timeout_s=0.5)
        finally:
            blocker.rollback()
            blocker.close()

    assert content(db.engine) == before
    assert events(db.engine)[-1][:2] == ("restore", "failed")


# the comparison is dialect-independent; staging is covered on both
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_verify_names_each_mismatch(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=5)
    backup = create_backup(db.engine, tmp_path).path
    _rewrite_manifest(
        backup, row_counts={**Manifest.load(manifest_path(backup)).row_counts, "agent_logs": 6}
    )
    report = verify_backup(backup, target=db.engine.url)
    assert not report.ok
    assert report.mismatches == ["agent_logs has 5 rows, manifest says 6"]


def test_backup_failing_db_check_is_refused(db: Database, tmp_path: Path) -> None:
    ids = small_dataset(db, logs=5)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE conversations SET message_count = 99 WHERE id = {ids['conversation']}"
        )
    backup = create_backup(db.engine, tmp_path).path
    if db.dialect == "sqlite":
        report = verify_backup(backup, target=db.engine.url)
        assert not report.ok and report.mismatches == []
        assert report.check is not None
        assert [(p.rule, p.table) for p in report.check.problems] == [("counter", "conversations")]
    with pytest.raises(CorruptBackupError, match=r"refusing .*\[counter\] conversations"):
        restore_backup(db.engine, backup, backup_dir=tmp_path)


def test_backup_of_other_dialect_is_refused(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=1)
    backup = create_backup(db.engine, tmp_path).path
    other = "postgresql://u@h/x" if db.dialect == "sqlite" else "sqlite:///x.db"
    with pytest.raises(CorruptBackupError, match="cannot be restored into"):
        verify_backup(backup, target=sa.make_url(other))


def test_older_schema_backup_is_upgraded_to_head(
    own_db: Database, dialect: str, tmp_path: Path
) -> None:
    db = own_db
    from swarm_director.db import make_engine
    from swarm_director.migrations import migrate
    from tests.dbtools import fresh_database

    old = "003_add_conversation_tracking"
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine, old)
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO agents (name, agent_type, status, capabilities, config, "
                    "total_conversations, total_messages_sent, created_at, updated_at) VALUES "
                    "('old-timer', 'worker', 'idle', '[]', '{}', 0, 0, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            backup = create_backup(engine, tmp_path / "old").path
        finally:
            engine.dispose()
    assert Manifest.load(manifest_path(backup)).schema_revision == old

    report = restore_backup(db.engine, backup, backup_dir=tmp_path)

    assert report.verify.upgraded_from == old
    assert migrate.current_revision(db.engine) == head_revision()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM agents").scalars().all() == ["old-timer"]
        # The table the newer revision added exists and took the live trail since the backup
        # (the restore's safety backup) and the restore's own row.
        assert conn.exec_driver_sql(
            "SELECT operation FROM maintenance_events ORDER BY id"
        ).scalars().all() == ["backup", "restore"]


def test_missing_backup_file(db: Database, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no such backup file"):
        restore_backup(db.engine, tmp_path / "nope.sqlite3", backup_dir=tmp_path)
