"""Every method of the blocking client against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from swarm_director.client import (
    Client,
    ConflictError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from swarm_director.schemas import AgentCreate, AgentUpdate, LogCreate, TaskCreate, TaskUpdate
from tests.client.servers import ServeProcess


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_health_ready_and_stats(client: Client) -> None:
    assert client.health().status == "ok"
    ready = client.ready()
    assert ready.status == "ready" and ready.revision is not None
    stats = client.admin_stats()
    assert {table.name for table in stats.tables} >= {"agents", "tasks", "agent_logs"}


def test_agents(client: Client) -> None:
    boss = client.create_agent(AgentCreate(name=_name("boss"), agent_type="supervisor"))
    worker = client.create_agent(
        {"name": _name("worker"), "agent_type": "worker", "parent_id": boss.id}
    )
    assert client.get_agent(worker.id).parent_id == boss.id
    page = client.list_agents(parent_id=boss.id)
    assert [a.id for a in page.items] == [worker.id] and page.next_cursor is None
    changed = client.update_agent(worker.id, AgentUpdate(status="busy"))
    assert changed.status == "busy" and changed.name == worker.name  # only `status` was sent
    assert worker.id in {a.id for a in client.iter_agents(agent_type="worker", limit=1)}
    with pytest.raises(ConflictError) as conflict:
        client.create_agent({"name": worker.name, "agent_type": "worker"})
    assert conflict.value.status == 409
    client.delete_agent(worker.id)
    with pytest.raises(NotFoundError):
        client.get_agent(worker.id)


def test_tasks_and_subtasks(client: Client) -> None:
    user = _name("user")
    parent = client.create_task(TaskCreate(type="analysis", title="parent", user_id=user))
    children = [
        client.create_task({"type": "analysis", "title": f"child {i}", "parent_task_id": parent.id})
        for i in range(3)
    ]
    assert client.get_task(parent.id).title == "parent"
    assert [t.id for t in client.list_tasks(user_id=user).items] == [parent.id]
    first = client.list_subtasks(parent.id, limit=2)
    assert len(first.items) == 2 and first.next_cursor is not None
    assert [t.id for t in client.iter_subtasks(parent.id, limit=2)] == [c.id for c in children]
    assert [t.id for t in client.iter_tasks(parent_task_id=parent.id, limit=1)] == [
        c.id for c in children
    ]
    claimed = client.update_task(
        children[0].id, TaskUpdate(status="in_progress", expected_status="pending")
    )
    assert claimed.status == "in_progress"
    with pytest.raises(ConflictError):  # a second claim loses
        client.update_task(children[0].id, {"status": "in_progress", "expected_status": "pending"})
    client.delete_task(parent.id)
    with pytest.raises(NotFoundError):
        client.get_task(children[1].id)  # subtasks went with it


def test_logs(client: Client) -> None:
    task = client.create_task({"type": "analysis", "title": "logs"})
    one = client.add_log(task.id, LogCreate(agent_type="director", message="started"))
    assert one.task_id == task.id and one.log_level == "info"
    rows = [
        {
            "agent_type": "worker",
            "message": f"step {i}",
            "log_level": "warning" if i % 2 else "info",
        }
        for i in range(5)
    ]
    assert client.add_logs(task.id, rows).inserted == 5
    newest = client.list_task_logs(task.id, limit=2)
    assert [r.message for r in newest.items] == ["step 4", "step 3"]
    oldest_first = [r.message for r in client.iter_task_logs(task.id, order="asc", limit=2)]
    assert oldest_first == ["started"] + [f"step {i}" for i in range(5)]
    warnings = client.list_logs(task_id=task.id, level="warning")
    assert [r.message for r in warnings.items] == ["step 3", "step 1"]
    assert len(list(client.iter_logs(task_id=task.id, agent_type="worker", limit=3))) == 5
    with pytest.raises(NotFoundError):
        client.list_task_logs(10**6)
    with pytest.raises(ValidationError) as invalid:
        client.add_logs(task.id, [{"agent_type": "w", "message": "ok"}, {"agent_type": "w"}])
    assert "[1].message" in invalid.value.fields
    assert client.list_task_logs(task.id, limit=100).items.__len__() == 6  # nothing stored


def test_drafts(client: Client) -> None:
    task = client.create_task({"type": "email_draft", "title": "drafts"})
    v1 = client.create_draft(task.id, {"content": "Hello\n"})
    v2 = client.create_draft(task.id, {"content": "Hello world\n"})
    assert (v1.version, v2.version) == (1, 2)
    assert client.get_draft(v2.id).content == "Hello world\n"
    assert client.get_draft_version(task.id, 1).id == v1.id
    assert [d.version for d in client.list_drafts(task.id).items] == [1, 2]
    assert [d.version for d in client.iter_drafts(task.id, limit=1)] == [1, 2]
    diff = client.diff_drafts(task.id, 1, 2)
    assert "-Hello\n+Hello world" in diff.diff
    reviewed = client.review_draft(v2.id, {"status": "approved", "review_notes": "fine"})
    assert reviewed.status == "approved"
    with pytest.raises(ValidationError):
        client.review_draft(v2.id, {"content": "changed"})


def test_emails(client: Client) -> None:
    task = client.create_task({"type": "communication", "title": "emails"})
    draft = client.create_email(
        task.id, {"recipient": "a@example.com", "subject": "Hi", "body": "Text"}
    )
    queued = client.create_email(
        task.id,
        {"recipient": "b@example.com", "subject": "Hi", "body": "Text", "status": "queued"},
    )
    assert client.get_email(draft.id).status == "draft"
    assert [e.id for e in client.list_task_emails(task.id).items] == [draft.id, queued.id]
    assert [e.id for e in client.iter_task_emails(task.id, status="queued")] == [queued.id]
    assert queued.id in {e.id for e in client.list_outbox(limit=1000).items}
    assert queued.id in {e.id for e in client.iter_outbox(limit=1)}
    assert queued.id in {e.id for e in client.iter_emails(task_id=task.id, limit=1)}
    assert {e.id for e in client.list_emails(task_id=task.id).items} == {draft.id, queued.id}
    edited = client.update_email(draft.id, {"subject": "Hello"})
    assert edited.subject == "Hello"
    sent = client.set_email_status(queued.id, "sent")
    assert sent.status == "sent" and sent.sent_at is not None
    failed = client.set_email_status(queued.id, "failed", error_message="bounced")
    assert failed.error_message == "bounced"
    with pytest.raises(ConflictError):
        client.set_email_status(draft.id, "delivered")  # draft -> delivered is not a move


def test_conversations_participants_messages(client: Client) -> None:
    agent = client.create_agent({"name": _name("talker"), "agent_type": "worker"})
    conv = client.create_conversation({"title": "planning", "metadata": {"k": 1}})
    assert client.get_conversation(conv.id).metadata == {"k": 1}
    assert conv.id in {c.id for c in client.list_conversations(status="active", limit=1000).items}
    assert conv.id in {c.id for c in client.iter_conversations(limit=1)}
    joined = client.add_participant(conv.id, {"agent_id": agent.id, "role": "lead"})
    assert joined.is_active and joined.role == "lead"
    assert [p.agent_id for p in client.list_participants(conv.id).items] == [agent.id]
    with pytest.raises(ConflictError):
        client.add_participant(conv.id, {"agent_id": agent.id})
    first = client.add_message(conv.id, {"content": "hi", "sender_agent_id": agent.id})
    client.add_message(conv.id, {"content": "in thread", "thread_id": "t1"})
    assert client.get_message(first.id).content == "hi"
    edited = client.edit_message(first.id, {"content": "hello"})
    assert edited.is_edited and edited.edit_count == 1
    assert [m.content for m in client.list_messages(conv.id, thread_id="t1").items] == ["in thread"]
    assert len(list(client.iter_messages(conv.id, limit=1))) == 2
    left = client.remove_participant(conv.id, agent.id)
    assert not left.is_active
    assert [p.agent_id for p in client.iter_participants(conv.id, active=False)] == [agent.id]
    done = client.update_conversation(conv.id, {"status": "completed"})
    assert done.completed_at is not None
    client.delete_conversation(conv.id)
    with pytest.raises(NotFoundError):
        client.get_conversation(conv.id)


def test_token_is_required_and_checked(server: ServeProcess) -> None:
    with Client(server.url) as anonymous:
        assert anonymous.health().status == "ok"  # public
        with pytest.raises(UnauthorizedError) as missing:
            anonymous.list_tasks()
    assert missing.value.status == 401 and missing.value.code == "unauthorized"
    with Client(server.url, "wrong") as wrong, pytest.raises(UnauthorizedError):
        wrong.get_task(1)


def test_reports(client: Client) -> None:
    from datetime import UTC, datetime, timedelta

    task = client.create_task(TaskCreate(type="analysis", title=_name("counted")))
    client.add_log(task.id, LogCreate(agent_type="worker", message="boom 42", log_level="error"))
    now = datetime.now(UTC)
    since, until = now - timedelta(hours=1), now + timedelta(minutes=1)
    tasks = client.report_tasks(since=since, until=until, bucket="minute", by="type")
    analysis = next(s for s in tasks.series if s.key == "analysis")
    assert sum(analysis.created) >= 1 and len(tasks.range.buckets) in (61, 62)
    logs = client.report_logs(since=since, until=until)
    assert logs.totals["error"] >= 1
    failures = client.report_failures(since=since, until=until)
    assert any(e.pattern == "boom <n>" and e.source == "log" for e in failures.errors)
    for call in (client.report_durations, client.report_emails, client.report_drafts):
        assert call(since=since, until=until).range.since == since
    with pytest.raises(ValidationError) as bad:
        client.report_tasks(bucket="minute", since=now - timedelta(days=30), until=now)
    assert "bucket" in bad.value.details["fields"]
