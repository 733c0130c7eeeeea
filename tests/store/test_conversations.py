"""Conversations: CRUD, participants, messages and counters that stay exact."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import (
    Agent,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    Message,
)
from swarm_director.store import conversations as conv
from tests.store.conftest import count_rows, new_agent, new_task


def test_create_get_update_list(session: Session) -> None:
    creator = new_agent(session)
    task = new_task(session)
    c = conv.create_conversation(
        session,
        {
            "title": "Planning",
            "task_id": task.id,
            "created_by_agent_id": creator.id,
            "metadata": {"k": 1},
        },
    )
    assert (c.status, c.participant_count, c.message_count, c.meta) == (
        ConversationStatus.ACTIVE,
        0,
        0,
        {"k": 1},
    )
    other = conv.create_conversation(session, {"title": "Other"})
    assert other.meta is None
    assert [x.id for x in conv.list_conversations(session, {"task_id": task.id}).items] == [c.id]
    done = conv.update_conversation(session, c.id, {"status": "completed", "metadata": None})
    assert done.completed_at is not None and done.meta is None
    archived = conv.update_conversation(session, c.id, {"status": "archived"})
    assert archived.completed_at == done.completed_at
    assert [
        x.id for x in conv.list_conversations(session, {"status": ConversationStatus.ACTIVE}).items
    ] == [other.id]
    assert conv.update_conversation(session, c.id, {"status": "active"}).completed_at is None


def test_missing_references(session: Session) -> None:
    for field in ("task_id", "created_by_agent_id"):
        with pytest.raises(ValidationError) as info:
            conv.create_conversation(session, {"title": "t", field: 999})
        assert field in info.value.details["fields"]
    with pytest.raises(NotFoundError):
        conv.get_conversation(session, 999)
    with pytest.raises(NotFoundError):
        conv.add_message(session, 999, {"content": "hi"})
    c = conv.create_conversation(session, {"title": "t"})
    with pytest.raises(ValidationError) as info:
        conv.add_participant(session, c.id, 999)
    assert "agent_id" in info.value.details["fields"]


def counters(s: Session, conversation_id: int, *agent_ids: int) -> dict[str, object]:
    c = s.get(Conversation, conversation_id, populate_existing=True)
    assert c is not None
    agents = {
        a.id: a for a in s.scalars(sa.select(Agent).execution_options(populate_existing=True))
    }
    members = {
        p.agent_id: p
        for p in s.scalars(
            sa.select(ConversationParticipant).where(
                ConversationParticipant.conversation_id == conversation_id
            )
        )
    }
    return {
        "participants": c.participant_count,
        "messages": c.message_count,
        "sent": [agents[a].total_messages_sent for a in agent_ids],
        "joined": [agents[a].total_conversations for a in agent_ids],
        "member_messages": [members[a].message_count if a in members else None for a in agent_ids],
    }


def test_counters_follow_joins_leaves_and_messages(db: Database) -> None:
    with db.transaction() as s:
        a, b = new_agent(s), new_agent(s)
        c = conv.create_conversation(s, {"title": "t"})
        c2 = conv.create_conversation(s, {"title": "t2"})
        ids = (a.id, b.id)
        joined = conv.add_participant(s, c.id, a.id, role="lead")
        assert (joined.role, joined.is_active, joined.left_at) == ("lead", True, None)
        conv.add_participant(s, c.id, b.id)
        conv.add_participant(s, c2.id, a.id)
        for i in range(3):
            conv.add_message(s, c.id, {"content": f"a{i}", "sender_agent_id": a.id})
        conv.add_message(s, c.id, {"content": "b0", "sender_agent_id": b.id})
        conv.add_message(s, c.id, {"content": "system note", "message_type": "system"})
        conv.add_message(s, c2.id, {"content": "elsewhere", "sender_agent_id": a.id})
    with db.read() as s:
        assert counters(s, c.id, *ids) == {
            "participants": 2,
            "messages": 5,
            "sent": [4, 1],
            "joined": [2, 1],
            "member_messages": [3, 1],
        }
        agent_a = s.get(Agent, a.id)
        assert agent_a is not None and agent_a.last_conversation_at is not None

    with db.transaction() as s:
        left = conv.remove_participant(s, c.id, b.id)
        assert (left.is_active, left.left_at is not None) == (False, True)
        with pytest.raises(NotFoundError):
            conv.remove_participant(s, c.id, b.id)
        with pytest.raises(ValidationError) as info:
            conv.add_message(s, c.id, {"content": "gone", "sender_agent_id": b.id})
        assert "sender_agent_id" in info.value.details["fields"]
    with db.read() as s:
        assert counters(s, c.id, *ids)["participants"] == 1

    with db.transaction() as s:
        back = conv.add_participant(s, c.id, b.id)
        assert (back.is_active, back.left_at, back.message_count) == (True, None, 1)
        with pytest.raises(ConflictError):
            conv.add_participant(s, c.id, b.id)
    with db.read() as s:
        # A re-join reactivates the old row and does not count as a new conversation.
        assert counters(s, c.id, *ids) == {
            "participants": 2,
            "messages": 5,
            "sent": [4, 1],
            "joined": [2, 1],
            "member_messages": [3, 1],
        }
        assert (
            count_rows(s, ConversationParticipant, ConversationParticipant.conversation_id == c.id)
            == 2
        )
        listed = conv.list_participants(s, c.id, active=True)
        assert sorted(p.agent_id for p in listed.items) == sorted(ids)


def test_refused_message_changes_no_counter(db: Database) -> None:
    with db.transaction() as s:
        a = new_agent(s)
        c = conv.create_conversation(s, {"title": "t"})
        conv.add_participant(s, c.id, a.id)
        before = counters(s, c.id, a.id)
    with db.transaction() as s:
        with pytest.raises(ValidationError):
            conv.add_message(s, c.id, {"content": "", "sender_agent_id": a.id})
        with pytest.raises(ValidationError):
            conv.add_message(
                s, c.id, {"content": "reply", "sender_agent_id": a.id, "parent_message_id": 999}
            )
    with db.read() as s:
        assert counters(s, c.id, a.id) == before
        assert count_rows(s, Message) == 0


def test_closed_conversations_take_no_messages_or_participants(session: Session) -> None:
    a = new_agent(session)
    c = conv.create_conversation(session, {"title": "t"})
    conv.update_conversation(session, c.id, {"status": "archived"})
    with pytest.raises(ConflictError):
        conv.add_participant(session, c.id, a.id)
    with pytest.raises(ConflictError):
        conv.add_message(session, c.id, {"content": "late"})


def test_messages_in_order_threads_and_edits(session: Session) -> None:
    a = new_agent(session)
    c, other = (
        conv.create_conversation(session, {"title": "t"}),
        conv.create_conversation(session, {"title": "o"}),
    )
    conv.add_participant(session, c.id, a.id)
    first = conv.add_message(
        session, c.id, {"content": "q", "sender_agent_id": a.id, "thread_id": "t1"}
    )
    reply = conv.add_message(
        session,
        c.id,
        {"content": "a", "parent_message_id": first.id, "thread_id": "t1", "metadata": {"x": 1}},
    )
    conv.add_message(session, c.id, {"content": "unrelated"})
    foreign = conv.add_message(session, other.id, {"content": "x"})
    with pytest.raises(ValidationError) as info:
        conv.add_message(session, c.id, {"content": "r", "parent_message_id": foreign.id})
    assert "parent_message_id" in info.value.details["fields"]

    page = conv.list_messages(session, c.id, limit=2)
    rest = conv.list_messages(session, c.id, limit=2, cursor=page.next_cursor)
    assert [m.content for m in page.items + rest.items] == ["q", "a", "unrelated"]
    assert [m.id for m in conv.list_messages(session, c.id, {"thread_id": "t1"}).items] == [
        first.id,
        reply.id,
    ]
    assert reply.meta == {"x": 1} and reply.parent_message_id == first.id

    written_at = reply.updated_at
    edited = conv.edit_message(session, reply.id, {"content": "a, corrected"})
    assert edited.updated_at > written_at
    edited = conv.edit_message(session, reply.id, {"metadata": None})
    assert (edited.content, edited.is_edited, edited.edit_count, edited.meta) == (
        "a, corrected",
        True,
        2,
        None,
    )
    assert conv.get_message(session, first.id).is_edited is False
    assert conv.get_conversation(session, c.id).message_count == 3


def test_concurrent_messages_count_every_one(db: Database) -> None:
    with db.transaction() as s:
        agents = [new_agent(s) for _ in range(3)]
        c = conv.create_conversation(s, {"title": "busy"})
        for agent in agents:
            conv.add_participant(s, c.id, agent.id)
    start = threading.Barrier(len(agents))

    def talk(agent_id: int) -> None:
        start.wait()
        for i in range(10):
            with db.transaction() as s:
                conv.add_message(s, c.id, {"content": str(i), "sender_agent_id": agent_id})

    threads = [threading.Thread(target=talk, args=(agent.id,)) for agent in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as s:
        got = counters(s, c.id, *(a.id for a in agents))
        assert count_rows(s, Message) == 30
    assert (
        got["messages"] == 30
        and got["sent"] == [10, 10, 10]
        and got["member_messages"] == [10, 10, 10]
    )


def test_delete_conversation_removes_messages_and_participants(session: Session) -> None:
    a = new_agent(session)
    task = new_task(session)
    c = conv.create_conversation(session, {"title": "t", "task_id": task.id})
    from swarm_director.store import tasks

    tasks.update_task(session, task.id, {"conversation_id": c.id})
    conv.add_participant(session, c.id, a.id)
    conv.add_message(session, c.id, {"content": "hi", "sender_agent_id": a.id})
    conv.delete_conversation(session, c.id)
    assert count_rows(session, Message) == 0 and count_rows(session, ConversationParticipant) == 0
    assert tasks.get_task(session, task.id).conversation_id is None
    assert session.get(Agent, a.id).total_messages_sent == 1  # type: ignore[union-attr]
