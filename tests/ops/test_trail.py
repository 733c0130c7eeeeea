"""The audit trail across a restore, and db maintain verifying the backup it takes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.models import ApiScope
from swarm_director.ops.backup.create import create_backup
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.checks.db_check import check_database
from swarm_director.ops.crypto import age
from swarm_director.ops.maintain import MaintenancePolicy, run_maintenance
from swarm_director.ops.optimize import optimize
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.store import keys
from tests.ops.factory import add_task, count, insert_logs, small_dataset
from tests.ops.helpers import events

DAY = timedelta(days=1)


def test_restore_keeps_the_backup_everything_after_it_and_the_restore(
    own_db: Database, tmp_path: Path
) -> None:
    db = own_db
    small_dataset(db, logs=3)
    optimize(db.engine)  # before the backup: in the backup's own trail already
    backup = create_backup(db.engine, tmp_path)
    check_database(db.engine)
    with db.transaction() as session:
        keys.create_key(session, "after-backup", ApiScope.READ)
    optimize(db.engine)

    restore_backup(db.engine, backup.path, backup_dir=tmp_path)

    trail = [(op, status) for op, status, _ in events(db.engine)]
    assert trail == [
        ("optimize", "ok"),
        ("backup", "ok"),  # the backup that was restored
        ("check", "ok"),
        ("key_create", "ok"),
        ("optimize", "ok"),
        ("backup", "ok"),  # the safety backup of the restore
        ("restore", "ok"),
    ]
    backup_event = events(db.engine)[1][2]
    assert backup_event["path"] == str(backup.path)
    restore_event = events(db.engine)[-1][2]
    assert restore_event["carried_events"] == 5
    # The data is the backup's: the key made after it is gone, its creation is on record.
    with db.read() as session:
        assert keys.list_keys(session) == []


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_maintain_fails_on_a_backup_corrupted_before_its_verify(
    db: Database, tmp_path: Path
) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 10, age=40 * DAY)
    policy = MaintenancePolicy(
        backup_dir=tmp_path / "b", retention=RetentionPolicy(older_than=30 * DAY)
    )
    report = run_maintenance(db.engine, policy, before_verify=_flip_a_byte)
    steps = {s.name: s for s in report.steps}
    assert not report.ok
    assert not steps["verify"].ok and "damaged" in steps["verify"].summary
    assert not steps["cleanup"].ok  # no verified backup holds the logs: none deleted
    assert count(db.engine, __import__("swarm_director.models").models.AgentLog) == 10
    verify_events = [(op, st) for op, st, _ in events(db.engine) if op == "verify"]
    assert verify_events[-1] == ("verify", "failed")

    good = run_maintenance(db.engine, policy)
    assert good.ok, good.as_dict()
    names = [s.name for s in good.steps if s.name != "partitions"]  # PostgreSQL's first step
    assert names[:2] == ["backup", "verify"]
    assert [(op, st) for op, st, _ in events(db.engine) if op == "verify"][-1] == ("verify", "ok")


# the exit status does not depend on the dialect
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_maintain_cli_exits_non_zero_when_verify_fails_and_no_verify_skips_it(
    db: Database, tmp_path: Path
) -> None:
    small_dataset(db, logs=2)
    url = db.engine.url.render_as_string(hide_password=False)
    _, recipient = age.new_identity()
    env = {"SWARM_BACKUP_RECIPIENTS": recipient, "SWARM_BACKUP_IDENTITY": ""}
    args = ["db", "maintain", "--database-url", url, "--dir", str(tmp_path / "b"), "--no-optimize"]
    # Encrypted to a recipient whose identity is not here: the backup cannot be verified.
    failed = CliRunner().invoke(cli, args, env=env)
    assert failed.exit_code == 1, failed.output
    assert "verify    FAILED" in failed.output and "SWARM_BACKUP_IDENTITY" in failed.output
    skipped = CliRunner().invoke(cli, [*args, "--no-verify"], env=env)
    assert skipped.exit_code == 0, skipped.output
    assert "verify" not in skipped.output.split("Maintenance")[0].split()
