"""Hostile input to the store: arbitrary values either pass validation or are refused cleanly.

Hypothesis feeds every store function that takes caller data (create, update, status change,
batch ingest, list filters and cursors) with bodies built from hostile values (SQL and path
strings, NUL and odd Unicode, huge and non-finite numbers, wrong types, unknown fields,
forged cursors). Passing means, on SQLite and PostgreSQL:

* the call succeeds, or raises one of the store's typed refusals (``ValidationError``, or
  ``NotFoundError``/``ConflictError`` for a missing row or a state that forbids the change) —
  never a driver error, ``TypeError``, ``OverflowError`` or anything else;
* a refused call stored nothing: every table reads exactly as before, in the same transaction
  (so a caller that catches the error and commits anyway does not persist half a change).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from swarm_director.db import Base, Database, make_engine
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.schemas import (
    AgentCreate,
    AgentUpdate,
    ConversationCreate,
    ConversationUpdate,
    DraftCreate,
    DraftUpdate,
    EmailCreate,
    EmailUpdate,
    LogCreate,
    MessageCreate,
    MessageUpdate,
    TaskCreate,
    TaskUpdate,
)
from swarm_director.store import agents, conversations, drafts, emails, logs, tasks
from tests.dbtools import fresh_database
from tests.reliability.conftest import Figures, Scale
from tests.reliability.hostile import HOSTILE_TEXT, bodies, ids, json_values, values

REFUSALS = (ValidationError, NotFoundError, ConflictError)


def _fields(model: Any) -> list[str]:
    return sorted(model.model_fields)


def _forged_cursor(parts: list[Any]) -> str:
    raw = json.dumps(parts, allow_nan=True, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursors = st.one_of(
    st.none(),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=30),
    st.builds(
        lambda tag, rest: _forged_cursor([tag, *rest]),
        st.sampled_from(["tasks:asc", "logs:desc", "logs:asc", "agents:asc", "x"]),
        st.lists(json_values, max_size=3),
    ),
)

#: name → (strategy of argument tuples, call)
CALLS: dict[str, tuple[st.SearchStrategy[Any], Callable[..., Any]]] = {
    "create_agent": (st.tuples(bodies(_fields(AgentCreate))), agents.create_agent),
    "update_agent": (st.tuples(ids, bodies(_fields(AgentUpdate))), agents.update_agent),
    "create_task": (st.tuples(bodies(_fields(TaskCreate))), tasks.create_task),
    "update_task": (st.tuples(ids, bodies(_fields(TaskUpdate))), tasks.update_task),
    "add_log": (st.tuples(ids, bodies(_fields(LogCreate))), logs.add_log),
    "add_logs": (
        st.tuples(ids, st.lists(bodies(_fields(LogCreate)), max_size=4)),
        logs.add_logs,
    ),
    "create_draft": (st.tuples(ids, bodies(_fields(DraftCreate))), drafts.create_draft),
    "review_draft": (st.tuples(ids, bodies(_fields(DraftUpdate))), drafts.review_draft),
    "create_email": (st.tuples(ids, bodies(_fields(EmailCreate))), emails.create_email),
    "update_email": (st.tuples(ids, bodies(_fields(EmailUpdate))), emails.update_email),
    "set_email_status": (st.tuples(ids, values, values), emails.set_email_status),
    "create_conversation": (
        st.tuples(bodies(_fields(ConversationCreate))),
        conversations.create_conversation,
    ),
    "update_conversation": (
        st.tuples(ids, bodies(_fields(ConversationUpdate))),
        conversations.update_conversation,
    ),
    "add_participant": (st.tuples(ids, ids, values), conversations.add_participant),
    "add_message": (st.tuples(ids, bodies(_fields(MessageCreate))), conversations.add_message),
    "edit_message": (st.tuples(ids, bodies(_fields(MessageUpdate))), conversations.edit_message),
    "list_tasks": (
        st.tuples(values, values, cursors),
        lambda s, user_id, limit, cursor: tasks.list_tasks(
            s, {"user_id": user_id}, limit=limit, cursor=cursor
        ),
    ),
    "list_logs": (
        st.tuples(values, values, values, cursors),
        lambda s, session_id, agent_type, order, cursor: logs.list_logs(
            s, {"session_id": session_id, "agent_type": agent_type}, order=order, cursor=cursor
        ),
    ),
}


def _seed(db: Database) -> None:
    with db.transaction() as s:
        boss = agents.create_agent(s, {"name": "boss", "agent_type": "supervisor"})
        agents.create_agent(s, {"name": "writer", "agent_type": "worker", "parent_id": boss.id})
        task = tasks.create_task(s, {"type": "email_draft", "title": "seed"})
        logs.add_logs(s, task.id, [{"agent_type": "director", "message": "hi"}])
        drafts.create_draft(s, task.id, {"content": "v1"})
        emails.create_email(s, task.id, {"recipient": "a@b.example", "subject": "s", "body": "b"})
        conv = conversations.create_conversation(s, {"title": "seed", "task_id": task.id})
        conversations.add_participant(s, conv.id, boss.id)
        conversations.add_message(s, conv.id, {"content": "hello", "sender_agent_id": boss.id})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One seeded database per dialect; every example runs in a transaction rolled back."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    tmp: Path = tmp_path_factory.mktemp("hostile")
    with fresh_database(request.param, tmp) as url:
        db = Database(make_engine(url))
        Base.metadata.create_all(db.engine)
        _seed(db)
        try:
            yield db
        finally:
            db.dispose()


def _snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    snap = {}
    for table in Base.metadata.sorted_tables:
        cols = [sa.type_coerce(c, sa.String) for c in table.columns]
        rows = session.execute(sa.select(*cols).order_by(*table.primary_key.columns))
        snap[table.name] = [tuple(r) for r in rows]
    return snap


class Outcomes:
    def __init__(self) -> None:
        self.tried = 0
        self.accepted = 0
        self.refused = 0


@pytest.fixture(scope="module")
def outcomes(figures: Figures) -> Iterator[dict[str, Outcomes]]:
    collected: dict[str, Outcomes] = {}
    yield collected
    figures.record(
        "hostile_store",
        {
            "inputs_tried": sum(o.tried for o in collected.values()),
            "accepted": sum(o.accepted for o in collected.values()),
            "refused_cleanly": sum(o.refused for o in collected.values()),
            "functions": len(collected),
        },
    )


@pytest.mark.parametrize("name", sorted(CALLS))
def test_store_refuses_hostile_input_cleanly(
    name: str, seeded: Database, scale: Scale, outcomes: dict[str, Outcomes], request: Any
) -> None:
    strategy, call = CALLS[name]
    tally = outcomes.setdefault(f"{name}[{seeded.dialect}]", Outcomes())

    @settings(
        max_examples=scale.hypothesis_examples,
        deadline=None,
        database=None,
        derandomize=not scale.full,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(args=strategy)
    def check(args: tuple[Any, ...]) -> None:
        tally.tried += 1
        session = Session(seeded.engine, expire_on_commit=False)
        try:
            session.begin()
            before = _snapshot(session)
            try:
                call(session, *args)
            except REFUSALS:
                tally.refused += 1
                after = _snapshot(session)
                assert after == before, f"{name}{args!r} was refused but changed rows"
            else:
                tally.accepted += 1
        finally:
            session.rollback()
            session.close()

    check()
