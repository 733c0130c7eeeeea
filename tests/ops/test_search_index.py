"""db check and backups know the search indexes: damage is named, a restore searches."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.ops.backup.create import create_backup
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.checks.db_check import run_check
from swarm_director.store import logs
from tests.ops.factory import small_dataset


def _search_problems(db: Database) -> set[tuple[str | None, int | None, str]]:
    report = run_check(db.engine)
    assert "search_index" in report.rules
    return {(p.table, p.row_id, p.message) for p in report.problems if p.rule == "search_index"}


def _found(db: Database, q: str) -> list[str]:
    with db.engine.connect() as conn:
        return [row.message for row in logs.list_logs(conn, {"q": q}, limit=1000).items]


def test_rows_the_index_lost_or_kept_are_named(own_db: Database) -> None:
    db = own_db
    small_dataset(db, logs=5)
    assert _search_problems(db) == set()
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            # Written behind the triggers' back: one row never indexed, one deleted row kept.
            conn.exec_driver_sql("DROP TRIGGER agent_logs_fts_insert")
            conn.exec_driver_sql("DROP TRIGGER agent_logs_fts_delete")
            ids = conn.exec_driver_sql("SELECT min(id), max(id) FROM agent_logs").one()
            conn.exec_driver_sql(
                "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, log_level, "
                "created_at) SELECT task_id, agent_type, 'unindexed', timestamp, log_level, "
                "created_at FROM agent_logs LIMIT 1"
            )
            new_id = conn.exec_driver_sql("SELECT max(id) FROM agent_logs").scalar_one()
            conn.exec_driver_sql(f"DELETE FROM agent_logs WHERE id = {ids[0]}")
        else:
            conn.exec_driver_sql("DROP INDEX ix_messages_fts")
            conn.exec_driver_sql(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_tasks_fts'::regclass"
            )
    problems = _search_problems(db)
    if db.dialect == "sqlite":
        assert problems == {
            ("agent_logs", new_id, "row is missing from the search index agent_logs_fts"),
            (
                "agent_logs",
                ids[0],
                "the search index agent_logs_fts holds a row the table does not have",
            ),
        }
    else:
        assert problems == {
            ("messages", None, "full-text index ix_messages_fts is missing"),
            (
                "tasks",
                None,
                "full-text index ix_tasks_fts is invalid: REINDEX INDEX ix_tasks_fts",
            ),
        }
    assert not run_check(db.engine).ok


def test_backups_carry_the_index_and_a_restore_searches(own_db: Database, tmp_path: Path) -> None:
    db = own_db
    ids = small_dataset(db, logs=3)
    with db.transaction() as s:
        logs.add_logs(s, ids["task"], [{"agent_type": "worker", "message": "needle in backup"}])
    backup = create_backup(db.engine, tmp_path)
    verified = verify_backup(backup.path, target=db.engine.url)
    assert verified.ok and verified.check is not None  # verify ran db check on the copy
    assert "search_index" in verified.check.rules
    with db.transaction() as s:
        s.execute(sa.text("DELETE FROM agent_logs"))
        logs.add_logs(s, ids["task"], [{"agent_type": "worker", "message": "needle after"}])
    assert _found(db, "needle") == ["needle after"]

    restore_backup(db.engine, backup.path, backup_dir=tmp_path)

    assert _found(db, "needle") == ["needle in backup"]
    assert _found(db, "after") == []
    assert _search_problems(db) == set()
