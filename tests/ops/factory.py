"""Rows for ops tests, written with the ORM directly (the ops tests do not need the store)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db import Database, utcnow
from swarm_director.models import (
    Agent,
    AgentLog,
    AgentType,
    Conversation,
    ConversationParticipant,
    Draft,
    EmailMessage,
    EmailStatus,
    LogLevel,
    Message,
    Task,
    TaskStatus,
    TaskType,
)
from swarm_director.models.error_group import count_inserted_errors
from swarm_director.models.log_pattern import pattern_of
from swarm_director.models.rollup import count_inserted


def small_dataset(db: Database, *, logs: int = 20) -> dict[str, int]:
    """A consistent little data set (db check finds nothing); returns some ids."""
    with db.transaction() as s:
        director = Agent(name="director", agent_type=AgentType.SUPERVISOR)
        s.add(director)
        s.flush()
        writer = Agent(name="writer", agent_type=AgentType.SPECIALIST, parent_id=director.id)
        s.add(writer)
        s.flush()
        task = Task(type=TaskType.EMAIL_DRAFT, title="Welcome mail", assigned_agent_id=writer.id)
        s.add(task)
        s.flush()
        sub = Task(type=TaskType.ANALYSIS, title="Sub", parent_task_id=task.id)
        s.add(sub)
        s.flush()
        d1 = Draft(task_id=task.id, version=1, content="v1")
        d2 = Draft(task_id=task.id, version=2, content="v2")
        s.add_all([d1, d2])
        s.flush()
        s.add(
            EmailMessage(
                task_id=task.id,
                recipient="a@example.com",
                subject="Hi",
                body="Hello",
                status=EmailStatus.SENT,
                sent_at=utcnow(),
                draft_id=d2.id,
            )
        )
        conv = Conversation(title="c", task_id=task.id, created_by_agent_id=director.id)
        s.add(conv)
        s.flush()
        s.add_all(
            [
                ConversationParticipant(conversation_id=conv.id, agent_id=director.id),
                ConversationParticipant(conversation_id=conv.id, agent_id=writer.id),
            ]
        )
        s.add_all(
            [
                Message(conversation_id=conv.id, sender_agent_id=director.id, content="go"),
                Message(conversation_id=conv.id, sender_agent_id=writer.id, content="ok"),
                Message(conversation_id=conv.id, sender_agent_id=writer.id, content="done"),
            ]
        )
        s.flush()
        conv.participant_count = 2
        conv.message_count = 3
        director.total_conversations = 1
        writer.total_conversations = 1
        director.total_messages_sent = 1
        writer.total_messages_sent = 2
        s.execute(
            sa.update(ConversationParticipant)
            .where(ConversationParticipant.agent_id == director.id)
            .values(message_count=1)
        )
        s.execute(
            sa.update(ConversationParticipant)
            .where(ConversationParticipant.agent_id == writer.id)
            .values(message_count=2)
        )
        s.add_all(
            AgentLog(task_id=task.id, agent_type="specialist", message=f"log {i}")
            for i in range(logs)
        )
        return {
            "director": director.id,
            "writer": writer.id,
            "task": task.id,
            "subtask": sub.id,
            "draft1": d1.id,
            "draft2": d2.id,
            "conversation": conv.id,
        }


def add_task(db: Database, status: TaskStatus = TaskStatus.PENDING, title: str = "t") -> int:
    with db.transaction() as s:
        task = Task(type=TaskType.ANALYSIS, title=title, status=status)
        s.add(task)
        s.flush()
        return task.id


def insert_logs(
    engine: Engine,
    task_id: int,
    count: int,
    *,
    age: timedelta = timedelta(0),
    level: LogLevel = LogLevel.INFO,
    now: datetime | None = None,
) -> None:
    """``count`` logs of ``task_id``, all ``age`` old, in one transaction."""
    stamp = (now or utcnow()) - age
    table = AgentLog.__table__
    rows: list[dict[str, Any]] = [
        {
            "task_id": task_id,
            "agent_type": "worker",
            "message": f"message {i}",
            "timestamp": stamp,
            "log_level": level,
            "metadata": {"i": i},
            "created_at": stamp,
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
        # As the store's inserts do (SQLite; PostgreSQL's trigger counted them already).
        count_inserted(conn, [(stamp, level.value)] * count)
        if level == LogLevel.ERROR:  # the column's default gave them their pattern
            count_inserted_errors(conn, [(stamp, pattern_of(level, r["message"])) for r in rows])


def count(engine: Engine, model: type[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one())
