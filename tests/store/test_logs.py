"""Agent logs: single and bulk appends, filters, ordering, and the index the common query uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import NotFoundError, ValidationError
from swarm_director.models import AgentLog, LogLevel
from swarm_director.schemas import LogCreate, fields_from_pydantic
from swarm_director.schemas.filters import LogFilter
from swarm_director.schemas.logs import LogRow
from swarm_director.store import logs
from swarm_director.store.log_ingest import bind_processor, encode_documents
from swarm_director.store.log_ingest import sqlite_json as _sqlite_json
from swarm_director.store.log_ingest import sqlite_timestamp as _sqlite_timestamp
from tests.store.conftest import count_rows, new_agent, new_task

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_ROW = TypeAdapter(LogRow)


def rows(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "agent_type": "worker",
            "message": f"step {i}",
            "timestamp": T0 + timedelta(seconds=i),
            **extra,
        }
        for i in range(n)
    ]


def test_add_log_and_read_back(session: Session) -> None:
    agent = new_agent(session)
    task = new_task(session)
    log = logs.add_log(
        session,
        task.id,
        {
            "agent_type": "director",
            "message": "routed",
            "log_level": "warning",
            "agent_id": agent.id,
            "session_id": "s-1",
            "metadata": {"route": ["a", "b"]},
        },
    )
    assert log.id > 0 and log.log_level is LogLevel.WARNING and log.meta == {"route": ["a", "b"]}
    assert log.timestamp.tzinfo is not None
    page = logs.list_logs(session, LogFilter(task_id=task.id))
    assert [x.id for x in page.items] == [log.id]


def test_lists_through_a_session_see_its_unflushed_changes(session: Session) -> None:
    task = new_task(session)
    session.add(AgentLog(task_id=task.id, agent_type="worker", message="pending", timestamp=T0))
    # No flush by the caller: the list, a Core statement, must still see the row, as an ORM
    # query on the same session would.
    assert [x.message for x in logs.list_logs(session, LogFilter(task_id=task.id)).items] == [
        "pending"
    ]


def test_add_log_errors(session: Session) -> None:
    with pytest.raises(NotFoundError):
        logs.add_log(session, 999, {"agent_type": "w", "message": "m"})
    task = new_task(session)
    with pytest.raises(ValidationError) as info:
        logs.add_log(session, task.id, {"agent_type": "w", "message": "m", "agent_id": 55})
    assert "agent_id" in info.value.details["fields"]
    with pytest.raises(ValidationError) as info:
        logs.add_log(session, task.id, {"agent_type": "w", "message": "", "log_level": "loud"})
    assert set(info.value.details["fields"]) == {"message", "log_level"}


def test_bulk_add_of_5000_rows(db: Database) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
        agent_id = new_agent(s).id
        batch = rows(5000, agent_id=agent_id, metadata={"batch": 1})
        batch[10] = LogCreate(agent_type="critic", message="a model", log_level=LogLevel.ERROR)
        assert logs.add_logs(s, task_id, batch) == 5000
    with db.read() as s:
        assert count_rows(s, AgentLog, AgentLog.task_id == task_id) == 5000
        assert count_rows(s, AgentLog, AgentLog.log_level == "error") == 1
        oldest = logs.list_logs(s, LogFilter(task_id=task_id), order="asc", limit=2).items
        assert [x.message for x in oldest] == ["step 0", "step 1"]
        assert oldest[0].timestamp == T0 and oldest[0].meta == {"batch": 1}
        assert oldest[0].agent_id == agent_id and oldest[0].created_at.tzinfo is not None


def test_bulk_rows_without_timestamp_keep_batch_order(session: Session) -> None:
    task = new_task(session)
    before = datetime.now(UTC)
    logs.add_logs(session, task.id, [{"agent_type": "w", "message": str(i)} for i in range(30)])
    page = logs.list_logs(session, LogFilter(task_id=task.id), order="asc", limit=1000)
    assert [x.message for x in page.items] == [str(i) for i in range(30)]
    assert all(x.timestamp >= before - timedelta(seconds=1) for x in page.items)


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        ({"agent_type": "w", "message": "m", "log_level": "loud"}, "[17].log_level"),
        ({"agent_type": "w"}, "[17].message"),
        ({"agent_type": "w", "message": "m", "nope": 1}, "[17].nope"),
        ({"agent_type": "w", "message": "m", "metadata": "text"}, "[17].metadata"),
        ({"agent_type": "w", "message": "m", "metadata": {"x": [float("nan")]}}, "[17].metadata"),
        ({"agent_type": "w", "message": "m", "agent_id": 4242}, "[17].agent_id"),
        ("not an object", "[17]"),
    ],
)
def test_bad_row_rejects_whole_batch(db: Database, bad_row: Any, field: str) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
    batch: list[Any] = rows(40)
    batch[17] = bad_row
    with db.transaction() as s:
        with pytest.raises(ValidationError) as info:
            logs.add_logs(s, task_id, batch)
        assert field in info.value.details["fields"]
        assert field in info.value.message
    with db.read() as s:
        assert count_rows(s, AgentLog) == 0


def test_bulk_to_missing_task_is_not_found(session: Session) -> None:
    with pytest.raises(NotFoundError):
        logs.add_logs(session, 31337, rows(3))
    assert logs.add_logs(session, new_task(session).id, []) == 0


def test_bulk_rows_are_stored_like_orm_rows(db: Database) -> None:
    """Same stored text for timestamps (so ordering and range filters agree) and same JSON."""
    paris = timezone(timedelta(hours=1))
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=paris)
    with db.transaction() as s:
        task_id = new_task(s).id
        logs.add_log(
            s,
            task_id,
            {
                "agent_type": "w",
                "message": "orm",
                "timestamp": stamp,
                "metadata": {"é": [1.5, None]},
            },
        )
        logs.add_logs(
            s,
            task_id,
            [
                {
                    "agent_type": "w",
                    "message": "bulk",
                    "timestamp": stamp,
                    "metadata": {"é": [1.5, None]},
                }
            ],
        )
    with db.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT message, timestamp, metadata FROM agent_logs ORDER BY id")
        ).all()
    (_, orm_ts, orm_meta), (_, bulk_ts, bulk_meta) = stored
    assert orm_ts == bulk_ts
    as_json = [m if isinstance(m, dict) else json.loads(m) for m in (orm_meta, bulk_meta)]
    assert as_json[0] == as_json[1] == {"é": [1.5, None]}
    with db.read() as s:
        read = logs.list_logs(s, LogFilter(task_id=task_id)).items
        assert {x.timestamp for x in read} == {stamp}


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 7, 1, 0, 30, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(999, 1, 1, 0, 0),
    ],
)
def test_sqlite_fast_converters_match_sqlalchemy(value: datetime) -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    assert _sqlite_timestamp(value) == bind_processor(dialect, "timestamp")(value)
    doc = {"k": [1, 2.5, "ü", None, True, {"n": {}}]}
    assert json.loads(_sqlite_json(doc)) == json.loads(bind_processor(dialect, "metadata")(doc))


def test_filters_and_time_window(session: Session) -> None:
    agent = new_agent(session)
    task, other = new_task(session), new_task(session)
    levels = ["debug", "info", "warning", "error"]
    logs.add_logs(
        session,
        task.id,
        [
            {
                "agent_type": "critic" if i % 2 else "writer",
                "message": str(i),
                "log_level": levels[i % 4],
                "timestamp": T0 + timedelta(minutes=i),
                "agent_id": agent.id if i < 4 else None,
                "session_id": f"s{i % 3}",
            }
            for i in range(12)
        ],
    )
    logs.add_logs(session, other.id, rows(5))

    def messages(**filters: Any) -> list[str]:
        return [x.message for x in logs.list_logs(session, filters, order="asc").items]

    assert len(messages()) == 17
    assert messages(task_id=task.id, level=LogLevel.WARNING) == ["2", "3", "6", "7", "10", "11"]
    assert messages(task_id=task.id, level="error") == ["3", "7", "11"]
    assert messages(agent_type="critic", task_id=task.id) == ["1", "3", "5", "7", "9", "11"]
    assert messages(agent_id=agent.id) == ["0", "1", "2", "3"]
    assert messages(session_id="s2", task_id=task.id) == ["2", "5", "8", "11"]
    window = messages(
        task_id=task.id, since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6)
    )
    assert window == ["3", "4", "5"]
    naive_since = (T0 + timedelta(minutes=10)).replace(tzinfo=None)
    assert messages(task_id=task.id, since=naive_since) == ["10", "11"]
    newest = [x.message for x in logs.list_logs(session, LogFilter(task_id=task.id), limit=3).items]
    assert newest == ["11", "10", "9"]


def test_bad_order_is_a_validation_error(session: Session) -> None:
    with pytest.raises(ValidationError) as info:
        logs.list_logs(session, order="sideways")  # type: ignore[arg-type]
    assert "order" in info.value.details["fields"]


def _captured_sql(db: Database, session: Session, call: Any) -> tuple[str, Any]:
    seen: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if "FROM agent_logs" in statement:
            seen.append((statement, params))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("with_cursor", [False, True])
def test_newest_logs_of_a_task_use_the_task_index(db: Database, with_cursor: bool) -> None:
    with db.transaction() as s:
        task_ids = [new_task(s).id for _ in range(20)]
        for task_id in task_ids:
            logs.add_logs(s, task_id, rows(100))
    with db.transaction() as s:
        if db.dialect == "postgresql":
            s.execute(sa.text("ANALYZE agent_logs"))
            s.execute(sa.text("SET LOCAL enable_seqscan = off"))
        cursor = (
            logs.list_logs(s, LogFilter(task_id=task_ids[3])).next_cursor if with_cursor else None
        )
        statement, params = _captured_sql(
            db, s, lambda: logs.list_logs(s, LogFilter(task_id=task_ids[3]), cursor=cursor)
        )
        prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
        plan = "\n".join(
            str(row[-1]) for row in s.connection().exec_driver_sql(prefix + statement, params)
        )
        # On PostgreSQL agent_logs is partitioned: each partition has its own copy of the
        # index, attached to the parent's (these rows are all in the default partition).
        names = {"ix_agent_logs_task_id_timestamp_id"}
        if db.dialect == "postgresql":
            names |= set(
                s.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
                        "i.inhrelid WHERE i.inhparent = "
                        "CAST('ix_agent_logs_task_id_timestamp_id' AS regclass)"
                    )
                ).scalars()
            )
    assert any(f"{name} on" in plan or f"{name} " in plan for name in names), plan
    # The first page reads the index backwards and stops after 51 rows: nothing to sort
    # (a Merge Append of the partitions' ordered scans is no sort).
    # (For the last 50 rows of a small task PostgreSQL may rather sort them: a cost choice.)
    if not with_cursor or db.dialect == "sqlite":
        sorts = [line for line in plan.splitlines() if line.strip(" ->").startswith("Sort  (")]
        assert "TEMP B-TREE" not in plan and not sorts, plan


_LOG_DEFAULTS = {
    "log_level": "info",
    "timestamp": None,
    "agent_id": None,
    "session_id": None,
    "metadata": None,
}


def _outcome(validate: Any, row: Any) -> tuple[str, Any]:
    """("ok", the row as JSON with defaults filled) or ("error", the top-level fields named)."""
    try:
        return ("ok", {**_LOG_DEFAULTS, **validate(row)})
    except PydanticValidationError as exc:
        return ("error", sorted({path.split(".")[0] for path in fields_from_pydantic(exc)}))
    except ValidationError as exc:  # the store's own check of the encoded metadata
        fields = exc.details["fields"]
        return ("error", sorted({path.split(".", 1)[1].split(".")[0] for path in fields}))


def _as_bulk(row: Any) -> Any:
    """What the bulk path makes of one row: TypedDict validation, then the metadata check."""
    validated = _ROW.validate_python(row)
    encode_documents([validated])
    return _ROW.dump_python(validated, mode="json")


@pytest.mark.parametrize(
    "row",
    [
        {"agent_type": " writer ", "message": "m"},
        {
            "agent_type": "w",
            "message": "m",
            "log_level": "error",
            "timestamp": "2026-01-01T10:00:00+02:00",
            "agent_id": 3,
            "session_id": " s ",
            "metadata": {"a": [1, {"b": None}]},
        },
        {"agent_type": "w", "message": "m", "timestamp": datetime(2026, 1, 1, 12)},
        {"agent_type": "", "message": "", "log_level": "loud"},
        {"agent_type": "w", "message": "m", "agent_id": True, "session_id": "s" * 101},
        {"agent_type": "w", "message": "m", "metadata": {"x": [1.0, float("inf")]}},
        {"agent_type": "w", "message": "m", "metadata": {"x": {"y": float("nan")}}},
        {"agent_type": "w", "message": "m", "metadata": {"NaN": "Infinity \\u0000"}},
        {"agent_type": "w", "message": "m", "metadata": {"k": ["a\x00b"]}},
        {"agent_type": "w", "message": "m", "metadata": ["not", "an", "object"]},
        {"agent_type": "w", "message": "m", "unknown": 1},
        {"message": "m"},
    ],
)
def test_bulk_row_rules_are_those_of_log_create(row: dict[str, Any]) -> None:
    """The bulk path validates with the LogRow TypedDict for speed; it must agree with LogCreate."""
    as_model = _outcome(lambda r: LogCreate.model_validate(r).model_dump(mode="json"), row)
    as_row = _outcome(_as_bulk, row)
    assert as_row == as_model


def test_bulk_row_schema_is_that_of_log_create() -> None:
    def bare(schema: Any) -> Any:
        if isinstance(schema, dict):
            return {
                k: bare(v)
                for k, v in schema.items()
                if k not in ("title", "description", "default")
            }
        return [bare(v) for v in schema] if isinstance(schema, list) else schema

    assert bare(_ROW.json_schema()) == bare(LogCreate.model_json_schema())


def test_bulk_rows_with_copy_control_characters_come_back_unchanged(db: Database) -> None:
    """PostgreSQL writes batches through COPY text: its escapes must never reach the data."""
    tricky = ["tab\there", "line\nbreak\r\n", "back\\slash \\N \\t", "\\N", "ünï ☃ 𝄞", "a\\"]
    batch = [
        {
            "agent_type": "w\\t",
            "message": text,
            "session_id": text.strip() or "s",
            "metadata": {"text": text, "quote": '"\\"', "n": i},
        }
        for i, text in enumerate(tricky)
    ]
    with db.transaction() as s:
        task_id = new_task(s).id
        assert logs.add_logs(s, task_id, batch) == len(tricky)
    with db.read() as s:
        stored = logs.list_logs(s, LogFilter(task_id=task_id), order="asc").items
    assert [(r.message, r.session_id, r.meta, r.agent_type) for r in stored] == [
        (b["message"], b["session_id"], b["metadata"], "w\\t") for b in batch
    ]


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 7, 1, 0, 30),
    ],
)
def test_copy_timestamps_are_the_stored_instant(db: Database, value: datetime) -> None:
    # Naive timestamps are UTC on every path, whatever the session's TimeZone says.
    with db.transaction() as s:
        task_id = new_task(s).id
        logs.add_logs(s, task_id, [{"agent_type": "w", "message": "m", "timestamp": value}])
        logs.add_log(s, task_id, {"agent_type": "w", "message": "orm", "timestamp": value})
    with db.read() as s:
        stamps = {r.timestamp for r in logs.list_logs(s, LogFilter(task_id=task_id)).items}
    expected = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    assert stamps == {expected}
