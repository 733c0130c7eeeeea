"""Deleting rows: what goes with them and what is only unlinked."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import NotFoundError
from swarm_director.models import (
    Agent,
    AgentLog,
    Conversation,
    ConversationParticipant,
    Draft,
    EmailMessage,
    Message,
    Task,
)
from swarm_director.store import agents, conversations, drafts, emails, logs, tasks
from tests.store.conftest import count_rows, new_agent, new_task


def test_deleting_a_task_removes_its_logs_drafts_emails_and_subtasks(db: Database) -> None:
    with db.transaction() as s:
        root, keep = new_task(s), new_task(s)
        child = new_task(s, parent_task_id=root.id)
        grandchild = new_task(s, parent_task_id=child.id)
        for t in (root, child, grandchild, keep):
            logs.add_logs(s, t.id, [{"agent_type": "w", "message": "m"}] * 3)
            draft = drafts.create_draft(s, t.id, {"content": "c"})
            emails.create_email(
                s,
                t.id,
                {"recipient": "a@example.com", "subject": "s", "body": "b", "draft_id": draft.id},
            )
        c = conversations.create_conversation(s, {"title": "about root", "task_id": root.id})
        ids = (root.id, child.id, grandchild.id, keep.id, c.id)
    with db.transaction() as s:
        assert s.get(Task, ids[1]) is not None  # loaded before the delete
        tasks.delete_task(s, ids[0])
        # The same session no longer hands out the subtask the database removed.
        with pytest.raises(NotFoundError):
            tasks.get_task(s, ids[1])
    with db.read() as s:
        assert [t.id for t in tasks.list_tasks(s).items] == [ids[3]]
        for model in (AgentLog, Draft, EmailMessage):
            assert count_rows(s, model, model.task_id.in_(ids[:3])) == 0
            assert count_rows(s, model, model.task_id == ids[3]) > 0
        conversation = s.get(Conversation, ids[4])
        assert conversation is not None and conversation.task_id is None


def test_deleting_an_agent_nulls_references_and_ends_participations(db: Database) -> None:
    with db.transaction() as s:
        boss = new_agent(s, name="boss")
        gone = new_agent(s, name="gone", parent_id=boss.id)
        child = new_agent(s, name="child", parent_id=gone.id)
        task = new_task(s, assigned_agent_id=gone.id)
        log = logs.add_log(s, task.id, {"agent_type": "w", "message": "m", "agent_id": gone.id})
        logs.add_logs(s, task.id, [{"agent_type": "w", "message": "bulk", "agent_id": gone.id}])
        draft = drafts.create_draft(s, task.id, {"content": "c", "author_agent_id": gone.id})
        drafts.review_draft(s, draft.id, {"reviewer_agent_id": gone.id})
        c = conversations.create_conversation(s, {"title": "t", "created_by_agent_id": gone.id})
        conversations.add_participant(s, c.id, gone.id)
        conversations.add_participant(s, c.id, boss.id)
        message = conversations.add_message(s, c.id, {"content": "hi", "sender_agent_id": gone.id})
        ids = {
            "gone": gone.id,
            "child": child.id,
            "task": task.id,
            "log": log.id,
            "draft": draft.id,
            "conversation": c.id,
            "message": message.id,
            "boss": boss.id,
        }
    with db.transaction() as s:
        loaded_task = s.get(Task, ids["task"])
        agents.delete_agent(s, ids["gone"])
        # Objects the caller already held show the database's SET NULL, not stale ids.
        assert loaded_task is not None and loaded_task.assigned_agent_id is None
    with db.read() as s:
        assert s.get(Agent, ids["gone"]) is None
        assert s.get(Agent, ids["child"]).parent_id is None  # type: ignore[union-attr]
        assert s.get(Task, ids["task"]).assigned_agent_id is None  # type: ignore[union-attr]
        assert count_rows(s, AgentLog, AgentLog.agent_id.is_not(None)) == 0
        assert count_rows(s, AgentLog) == 2
        draft = s.get(Draft, ids["draft"])
        assert draft is not None and (draft.author_agent_id, draft.reviewer_agent_id) == (
            None,
            None,
        )
        conversation = s.get(Conversation, ids["conversation"])
        assert conversation is not None
        assert (conversation.created_by_agent_id, conversation.participant_count) == (None, 1)
        assert conversation.message_count == 1
        message = s.get(Message, ids["message"])
        assert message is not None and message.sender_agent_id is None
        remaining = s.query(ConversationParticipant).all()
        assert [p.agent_id for p in remaining] == [ids["boss"]]


def test_left_participant_does_not_change_count_when_agent_is_deleted(session: Session) -> None:
    a, b = new_agent(session), new_agent(session)
    c = conversations.create_conversation(session, {"title": "t"})
    conversations.add_participant(session, c.id, a.id)
    conversations.add_participant(session, c.id, b.id)
    conversations.remove_participant(session, c.id, a.id)
    agents.delete_agent(session, a.id)
    assert conversations.get_conversation(session, c.id).participant_count == 1
