"""The engine and transaction helper behave as documented on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.models import Agent, AgentType


def test_timestamps_come_back_as_aware_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=1))
    with db.transaction() as s:
        agent = Agent(
            name="a",
            agent_type=AgentType.WORKER,
            last_conversation_at=datetime(2026, 1, 1, 13, tzinfo=paris),
        )
        s.add(agent)
    with db.read() as s:
        got = s.get(Agent, agent.id)
        assert got is not None
        assert got.last_conversation_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
        assert got.last_conversation_at.utcoffset() == timedelta(0)
        assert got.created_at.tzinfo is not None


def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        s.add(Agent(name="lost", agent_type=AgentType.WORKER))
        s.flush()
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Agent)) == 0


def test_enum_check_constraint_rejects_unknown_value(db: Database) -> None:
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO agents (name, agent_type, status, capabilities, config, "
                "total_conversations, total_messages_sent, created_at, updated_at) VALUES "
                "('x', 'wizard', 'idle', '[]', '{}', 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_sqlite_connection_pragmas(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite only")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
