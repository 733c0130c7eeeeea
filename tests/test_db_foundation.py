"""The engine and transaction helper behave as documented on both dialects."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.db import Database, make_engine
from swarm_director.db import engine as engine_module
from swarm_director.models import Agent, AgentType

PARIS = timezone(timedelta(hours=1))


def test_timestamps_come_back_as_aware_utc(db: Database) -> None:
    with db.transaction() as s:
        agent = Agent(
            name="a",
            agent_type=AgentType.WORKER,
            last_conversation_at=datetime(2026, 1, 1, 13, tzinfo=PARIS),
        )
        s.add(agent)
    with db.read() as s:
        got = s.get(Agent, agent.id)
        assert got is not None
        assert got.last_conversation_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
        assert got.last_conversation_at.utcoffset() == timedelta(0)
        assert got.created_at.tzinfo is not None


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # SQLite stores timestamps as text
@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-01-01 12:00:00", datetime(2026, 1, 1, 12, tzinfo=UTC)),  # CURRENT_TIMESTAMP
        ("2026-01-01 12:00:00.250000", datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-01T13:00:00+01:00", datetime(2026, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_sqlite_timestamp_text_reads_back_as_aware_utc(
    db: Database, stored: str, expected: datetime
) -> None:
    # SQLite keeps timestamps as text; rows written by other tools (sqlite3 shell, a restore)
    # may use another ISO form than SQLAlchemy's. Both the ORM and the Core read paths parse it.
    with db.transaction() as s:
        agent = Agent(name="a", agent_type=AgentType.WORKER)
        s.add(agent)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE agents SET last_conversation_at = :t WHERE id = :id"),
            {"t": stored, "id": agent.id},
        )
    with db.read() as s:
        got = s.get(Agent, agent.id)
        assert got is not None and got.last_conversation_at == expected
        assert got.last_conversation_at.utcoffset() == timedelta(0)
    with db.statement_reads() as conn:
        value = conn.execute(sa.select(Agent.last_conversation_at)).scalar_one()
        assert value == expected and value.utcoffset() == timedelta(0)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # SQLite stores timestamps as text
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (datetime(2026, 1, 1, 12, tzinfo=UTC), "2026-01-01 12:00:00.000000"),
        (datetime(2026, 1, 1, 12, 0, 0, 7), "2026-01-01 12:00:00.000007"),  # naive: UTC
        (datetime(2026, 1, 1, 0, 30, tzinfo=PARIS), "2025-12-31 23:30:00.000000"),
        (datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "0999-12-31 23:59:59.999999"),
    ],
)
def test_sqlite_timestamps_are_written_as_sqlalchemys_text(
    db: Database, given: datetime, stored: str
) -> None:
    # The text is what SQLite compares and sorts: every writer (ORM, Core, the queue's
    # prepared statements) must write SQLAlchemy's own form, in UTC, always with microseconds.
    with db.transaction() as s:
        agent = Agent(name="a", agent_type=AgentType.WORKER, last_conversation_at=given)
        s.add(agent)
    with db.engine.begin() as conn:
        conn.execute(sa.update(Agent).values(last_seen_at=given).where(Agent.id == agent.id))
        texts = conn.execute(
            sa.text("SELECT last_conversation_at, last_seen_at FROM agents WHERE id = :id"),
            {"id": agent.id},
        ).one()
    dialect = db.engine.dialect
    sqlalchemy_text = (
        sa.DateTime()
        .dialect_impl(dialect)
        .bind_processor(dialect)(
            given.astimezone(UTC).replace(tzinfo=None) if given.tzinfo else given
        )
    )
    assert tuple(texts) == (stored, stored) == (sqlalchemy_text, sqlalchemy_text)


def _in_transaction(connection: sa.Connection) -> bool:
    raw = connection.connection.dbapi_connection
    if isinstance(raw, sqlite3.Connection):
        return raw.in_transaction
    status = raw.info.transaction_status  # type: ignore[union-attr]
    return bool(status != psycopg.pq.TransactionStatus.IDLE)


def test_statement_reads_hold_no_transaction_and_leave_the_pool_transactional(
    db_url: URL,
) -> None:
    database = Database(make_engine(db_url))
    writer = Database(make_engine(db_url))  # another pool: the one under test holds one connection
    try:
        with database.statement_reads() as conn:
            raw = conn.connection.dbapi_connection
            count = sa.select(sa.func.count()).select_from(Agent)
            assert conn.execute(count).scalar_one() == 0
            assert not _in_transaction(conn)  # nothing held between statements
            with writer.transaction() as s:
                s.add(Agent(name="new", agent_type=AgentType.WORKER))
            assert conn.execute(count).scalar_one() == 1  # sees what committed meanwhile
        # The same pooled connection is transactional again: a failed write on it leaves nothing.
        with pytest.raises(RuntimeError), database.transaction() as s:
            assert s.connection().connection.dbapi_connection is raw
            s.add(Agent(name="lost", agent_type=AgentType.WORKER))
            s.flush()
            raise RuntimeError("boom")
        with writer.read() as s:
            assert s.scalars(sa.select(Agent.name)).all() == ["new"]
    finally:
        database.dispose()
        writer.dispose()


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


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # the PRAGMAs are SQLite's
def test_sqlite_connection_pragmas(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


@contextmanager
def _pooled_connection_lost(
    db_url: URL, ping_after_idle_s: float, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[sa.Engine, int]]:
    """An engine whose one pooled connection's server process was just terminated, and the
    process id it had."""
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", ping_after_idle_s)
    engine = make_engine(db_url, pool_size=1)
    try:
        lost = _backend_pid(engine)
        with psycopg.connect(db_url.set(drivername="postgresql").render_as_string(False)) as c:
            c.execute("SELECT pg_terminate_backend(%s)", (lost,))
        yield engine, lost
    finally:
        engine.dispose()


# A SQLite connection is a file the process opened itself: nothing to lose.
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_postgresql_connection_lost_while_idle_is_replaced_unnoticed(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pooled connections idle over PING_AFTER_IDLE_S are pinged on checkout; one that went
    # away (a server restart, a proxy's idle timeout) is replaced before the caller sees it.
    with _pooled_connection_lost(db_url, 0.0, monkeypatch) as (engine, lost):
        assert _backend_pid(engine) != lost  # no error: the ping found it gone


# A SQLite connection is a file the process opened itself: nothing to lose.
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_postgresql_connection_used_within_the_idle_window_is_not_pinged(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the ping costs is saved on a connection used recently: lost within the window, its
    # next statement fails as a disconnect, and the pool is renewed for the one after.
    with _pooled_connection_lost(db_url, 60.0, monkeypatch) as (engine, lost):
        with pytest.raises(sa.exc.DBAPIError) as raised:
            _backend_pid(engine)
        assert raised.value.connection_invalidated
        assert _backend_pid(engine) != lost


def test_a_schema_built_from_the_models_alone_has_the_full_text_objects(tmp_path: Path) -> None:
    """``create_all`` after importing only the models (a fresh process, as a benchmark or a
    test fixture does) builds the search tables too; log search on it works."""
    db_file = tmp_path / "models.db"
    script = (
        "import sqlalchemy as sa, swarm_director.models\n"
        "from swarm_director.db import Base, make_engine\n"
        f"engine = make_engine('sqlite:///{db_file}')\n"
        "Base.metadata.create_all(engine)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    with closing(sqlite3.connect(db_file)) as conn:  # sqlite3's own `with` does not close
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"agent_logs_fts", "tasks_fts", "messages_fts"} <= names, sorted(names)
