"""db optimize, db stats and db maintain (statement timings: test_timings.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database, utcnow
from swarm_director.models import AgentLog, IdempotencyKey, LogLevel
from swarm_director.ops.backup.create import list_backups
from swarm_director.ops.errors import MaintenanceLockedError
from swarm_director.ops.maintain import MaintenancePolicy, maintenance_lock, run_maintenance
from swarm_director.ops.optimize import optimize
from swarm_director.ops.retention.expiry import expire_idempotency_keys
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.ops.stats.collect import collect_stats
from tests.ops.factory import add_task, count, insert_logs
from tests.ops.helpers import events

DAY = timedelta(days=1)


def test_optimize_reclaims_space_and_later_cleanups_shrink_the_file(db: Database) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 20_000, age=60 * DAY)
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM agent_logs WHERE id % 2 = 0"))
    report = optimize(db.engine)
    assert events(db.engine)[-1][:2] == ("optimize", "ok")
    if db.dialect != "sqlite":
        assert report.steps == ["compact rollups", "digest attempt hours", "VACUUM (ANALYZE)"]
        return
    assert report.bytes_after < report.bytes_before * 0.75
    assert "VACUUM" in report.steps
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
    size = Path(db.engine.url.database or "").stat().st_size
    # Now incremental: a cleanup gives pages back to the file system without a VACUUM.
    cleaned = cleanup_logs(db.engine, RetentionPolicy(older_than=30 * DAY))
    assert cleaned.deleted == 10_000
    assert cleaned.bytes_freed > 0
    assert Path(db.engine.url.database or "").stat().st_size < size * 0.6


def test_stats_show_sizes_last_runs_and_suggestions(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 300, age=45 * DAY)
    insert_logs(db.engine, task, 10, level=LogLevel.ERROR)
    stats = collect_stats(db.engine, exact=True)
    logs = next(t for t in stats.tables if t["name"] == "agent_logs")
    assert logs["rows"] == 310 and not logs["rows_estimated"]
    assert logs["bytes"] > 0
    assert "ix_agent_logs_timestamp_id" in logs["indexes"]
    assert stats.old_logs == 300
    assert stats.last["backup"] is None
    text = "\n".join(stats.suggestions)
    assert "No successful backup recorded" in text
    assert "300 logs are older than 30 d" in text
    if db.dialect == "sqlite":
        assert "never analyzed" in text
        # Nothing was deleted; the few free pages are the search index's (FTS5 merges its
        # segments as rows are added and frees the merged ones).
        assert stats.free_bytes is not None and stats.free_bytes <= 16 * 4096
        assert stats.wal_bytes is not None
    optimize(db.engine)
    after = collect_stats(db.engine)
    assert after.last["optimize"] is not None
    assert "never analyzed" not in "\n".join(after.suggestions)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # free list is a SQLite notion
def test_free_list_suggestion(db: Database) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 5000)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM agent_logs")
    stats = collect_stats(db.engine)
    assert stats.free_bytes and stats.free_bytes > 0.2 * stats.database_bytes
    assert any("Free list is" in s and "db optimize" in s for s in stats.suggestions)


def test_maintain_runs_every_step_and_never_twice_at_once(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 50, age=40 * DAY)
    insert_logs(db.engine, task, 5, age=40 * DAY, level=LogLevel.ERROR)
    policy = MaintenancePolicy(
        backup_dir=tmp_path / "b",
        keep_last=2,
        retention=RetentionPolicy(older_than=30 * DAY, keep={LogLevel.ERROR: 90 * DAY}),
        archive_dir=tmp_path / "archive",
    )
    with maintenance_lock(db.engine, policy.backup_dir):
        with pytest.raises(MaintenanceLockedError, match="another db maintain run"):
            run_maintenance(db.engine, policy)
        assert _lock_refused_in_other_process(db, policy.backup_dir)
    for _ in range(3):
        report = run_maintenance(db.engine, policy)
        assert report.ok, report.as_dict()
    expected = ["backup", "verify", "cleanup", "keys", "sessions", "optimize"]
    if db.engine.dialect.name == "postgresql":  # monthly log partitions made first
        expected.insert(0, "partitions")
        assert report.steps[0].summary == "all present"  # the first run made them
    assert [s.name for s in report.steps] == expected
    assert count(db.engine, __import__("swarm_director.models").models.AgentLog) == 5
    assert len(list_backups(policy.backup_dir)) == 2  # pruned to --keep-last
    assert len(list((tmp_path / "archive").glob("*.jsonl.gz"))) >= 1


def _try_lock(url: str, directory: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from swarm_director.db import make_engine

    engine = make_engine(url)
    try:
        with maintenance_lock(engine, Path(directory)):
            queue.put("acquired")
    except MaintenanceLockedError:
        queue.put("refused")
    finally:
        engine.dispose()


def _lock_refused_in_other_process(db: Database, directory: Path) -> bool:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    url = db.engine.url.render_as_string(hide_password=False)
    proc = ctx.Process(target=_try_lock, args=(url, str(directory), queue))
    proc.start()
    proc.join(60)
    return bool(queue.get(timeout=5) == "refused")


def test_maintain_fails_loudly_and_skips_cleanup_without_a_backup(
    db: Database, tmp_path: Path
) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 10, age=40 * DAY)
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the backup folder should be")
    url = db.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["db", "maintain", "--database-url", url, "--dir", str(blocked), "--json"],
    )
    assert result.exit_code != 0
    assert count(db.engine, __import__("swarm_director.models").models.AgentLog) == 10


def _add_keys(db: Database, **ages: timedelta) -> None:
    with db.engine.begin() as conn:
        for key, age in ages.items():
            conn.execute(
                sa.insert(IdempotencyKey).values(
                    scope="logs:task:1",
                    key=key,
                    request_hash="0" * 64,
                    result={"inserted": 1},
                    created_at=utcnow() - age,
                )
            )


def test_key_expiry_deletes_in_batches_until_none_is_left(db: Database) -> None:
    _add_keys(db, fresh=timedelta(hours=1), **{f"stale{i}": (2 + i) * DAY for i in range(5)})
    assert expire_idempotency_keys(db.engine, DAY, batch_size=2) == 5
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(IdempotencyKey.key)).scalars().all() == ["fresh"]
    assert expire_idempotency_keys(db.engine, DAY, batch_size=2) == 0
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        expire_idempotency_keys(db.engine, DAY, batch_size=0)  # would never end


def test_maintain_expires_old_idempotency_keys_and_refuses_a_bad_ttl(
    db: Database, tmp_path: Path
) -> None:
    _add_keys(db, fresh=timedelta(hours=1), stale=2 * DAY)
    url = db.engine.url.render_as_string(hide_password=False)
    base = ["db", "maintain", "--database-url", url, "--dir", str(tmp_path), "--no-optimize"]
    runner = CliRunner()
    for ttl, reason in (("a while", "use a number"), ("3000000d", "at most 100 years")):
        bad = runner.invoke(cli, [*base, "--idempotency-ttl", ttl])
        assert bad.exit_code == 1 and f"invalid duration '{ttl}': {reason}" in bad.output
        assert "Traceback" not in bad.output
    assert count(db.engine, IdempotencyKey) == 2 and not list_backups(tmp_path)
    (tmp_path / ".part-0123456789ab.out").write_bytes(b"left by a killed backup")
    done = runner.invoke(cli, [*base, "--idempotency-ttl", "1d"])
    assert done.exit_code == 0, done.output
    assert "keys      ok  expired 1 idempotency keys" in done.output
    assert ", removed 1 leftover files of a killed backup" in done.output
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(IdempotencyKey.key)).scalars().all() == ["fresh"]
    kept = runner.invoke(cli, [*base, "--idempotency-ttl", "1s", "--no-key-expiry"])
    assert kept.exit_code == 0
    assert not any(line.startswith("keys") for line in kept.output.splitlines())
    assert count(db.engine, IdempotencyKey) == 1


def test_cli_cleanup_logs_dry_run_archive_and_bad_input(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 30, age=40 * DAY)
    url = db.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["db", "cleanup-logs", "--database-url", url, "--dry-run"]).output
    assert "Would delete 30 logs (30 info)." in out
    bad = runner.invoke(cli, ["db", "cleanup-logs", "--database-url", url, "--older-than", "soon"])
    assert bad.exit_code == 1 and "invalid duration 'soon'" in bad.output
    huge = ["db", "cleanup-logs", "--database-url", url, "--older-than", "9999999999d", "-y"]
    bad = runner.invoke(cli, huge)  # was an OverflowError traceback
    assert bad.exit_code == 1 and "at most 100 years" in bad.output
    assert count(db.engine, AgentLog) == 30
    archive = tmp_path / "old.jsonl.gz"
    done = runner.invoke(
        cli,
        ["db", "cleanup-logs", "--database-url", url, "--archive", str(archive), "-y", "--json"],
    )
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert payload["deleted"] == 30 and payload["archived"] == 30
    assert archive.exists() and os.path.getsize(archive) > 0


def _logs_left(db: Database) -> list[tuple[str, int]]:
    """(level, age in whole days) of every log left, oldest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(AgentLog.log_level, AgentLog.timestamp)).all()
    now = utcnow()
    return sorted(((LogLevel(lvl).value, (now - at).days) for lvl, at in rows), key=lambda r: -r[1])


def test_cli_cleanup_logs_follows_the_retention_settings_unless_an_option_is_given(
    db: Database,
) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 2, age=3 * DAY)
    insert_logs(db.engine, task, 1, age=3 * DAY, level=LogLevel.ERROR)
    insert_logs(db.engine, task, 1, age=1 * DAY)
    url = db.engine.url.render_as_string(hide_password=False)
    env = {"SWARM_LOG_RETENTION": "2d", "SWARM_LOG_KEEP": "error=5d"}
    runner = CliRunner()
    done = runner.invoke(cli, ["db", "cleanup-logs", "--database-url", url, "-y"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Deleted 2 logs (2 info)")
    assert _logs_left(db) == [("error", 3), ("info", 1)]

    # An option wins over its setting: --keep '' keeps no level longer.
    args = ["db", "cleanup-logs", "--database-url", url, "-y", "--keep", ""]
    done = runner.invoke(cli, args, env=env)
    assert done.exit_code == 0, done.output
    assert _logs_left(db) == [("info", 1)]
    done = runner.invoke(cli, [*args, "--older-than", "12h"], env=env)
    assert done.exit_code == 0, done.output
    assert _logs_left(db) == []


def test_cli_cleanup_logs_refuses_a_bad_retention_setting(db: Database) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 3, age=40 * DAY)
    url = db.engine.url.render_as_string(hide_password=False)
    bad = CliRunner().invoke(
        cli,
        ["db", "cleanup-logs", "--database-url", url, "-y"],
        env={"SWARM_LOG_RETENTION": "a while"},
    )
    assert bad.exit_code == 1 and "invalid setting SWARM_LOG_RETENTION" in bad.output
    assert "Traceback" not in bad.output
    assert count(db.engine, AgentLog) == 3


def test_cli_stats_and_optimize_json(db: Database) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "optimize", "--database-url", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["bytes_before"] > 0
    result = runner.invoke(cli, ["db", "stats", "--database-url", url, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert {t["name"] for t in stats["tables"]} >= {"agents", "agent_logs"}
    assert stats["last"]["optimize"] is not None
    text = runner.invoke(cli, ["db", "stats", "--database-url", url]).output
    assert "Suggestions:" in text and "agent_logs" in text
