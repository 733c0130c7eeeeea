"""Tasks: CRUD, filters, lifecycle, subtasks without cycles."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from swarm_director.models import TaskPriority, TaskStatus, TaskType
from swarm_director.store import tasks
from tests.store.conftest import new_agent, new_task


def test_create_get_update_delete(session: Session) -> None:
    agent = new_agent(session)
    task = tasks.create_task(
        session,
        {
            "type": "email_draft",
            "title": "Welcome mail",
            "user_id": "u1",
            "assigned_agent_id": agent.id,
        },
    )
    assert (task.status, task.priority, task.completed_at) == ("pending", "medium", None)
    assert tasks.get_task(session, task.id).title == "Welcome mail"
    changed = tasks.update_task(session, task.id, {"priority": "high", "description": "d"})
    assert (changed.priority, changed.description) == (TaskPriority.HIGH, "d")
    tasks.delete_task(session, task.id)
    with pytest.raises(NotFoundError):
        tasks.get_task(session, task.id)


def test_status_is_ignored_at_creation(session: Session) -> None:
    with pytest.raises(ValidationError) as info:
        tasks.create_task(session, {"type": "analysis", "title": "t", "status": "completed"})
    assert "status" in info.value.details["fields"]


def test_missing_references_name_the_field(session: Session) -> None:
    for field in ("assigned_agent_id", "parent_task_id", "conversation_id"):
        with pytest.raises(ValidationError) as info:
            new_task(session, **{field: 777})
        assert list(info.value.details["fields"]) == [field]


def test_filters(session: Session) -> None:
    agent = new_agent(session)
    parent = new_task(session, user_id="alice")
    a = new_task(session, type="email_draft", user_id="alice", assigned_agent_id=agent.id)
    b = new_task(session, priority="critical", parent_task_id=parent.id)
    tasks.update_task(session, b.id, {"status": "in_progress"})

    def ids(**filters: object) -> list[int]:
        return [t.id for t in tasks.list_tasks(session, filters).items]

    assert ids() == [parent.id, a.id, b.id]
    assert ids(user_id="alice") == [parent.id, a.id]
    assert ids(type=TaskType.EMAIL_DRAFT) == [a.id]
    assert ids(assigned_agent_id=agent.id) == [a.id]
    assert ids(status=TaskStatus.IN_PROGRESS) == [b.id]
    assert ids(priority=TaskPriority.CRITICAL, parent_task_id=parent.id) == [b.id]
    assert [t.id for t in tasks.list_subtasks(session, parent.id).items] == [b.id]
    with pytest.raises(NotFoundError):
        tasks.list_subtasks(session, 999)


def test_lifecycle_and_completed_at(session: Session) -> None:
    task = new_task(session)
    for status in ("failed", "pending", "in_progress"):
        assert tasks.update_task(session, task.id, {"status": status}).completed_at is None
    done = tasks.update_task(session, task.id, {"status": "completed"})
    assert done.status is TaskStatus.COMPLETED and done.completed_at is not None
    assert done.completed_at.tzinfo is not None
    # Saying "completed" again is no change, and keeps the stamp.
    stamp = done.completed_at
    assert tasks.update_task(session, task.id, {"status": "completed"}).completed_at == stamp


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), "completed"),
        (("in_progress",), "pending"),
        (("in_progress", "completed"), "failed"),
        (("in_progress", "completed"), "pending"),
        (("in_progress", "completed"), "in_progress"),
        (("failed",), "completed"),
        (("failed",), "in_progress"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(
    db: Database, path: tuple[str, ...], illegal: str
) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
        for status in path:
            tasks.update_task(s, task_id, {"status": status})
    before = path[-1] if path else "pending"
    with db.transaction() as s:
        with pytest.raises(InvalidTransitionError) as info:
            tasks.update_task(s, task_id, {"status": illegal, "title": "renamed"})
        assert info.value.details["from"] == before and info.value.details["to"] == illegal
        assert before in info.value.message and illegal in info.value.message
    with db.read() as s:
        task = tasks.get_task(s, task_id)
        assert (task.status, task.title) == (before, task.title)
        assert task.title != "renamed"


def test_expected_status_is_a_precondition(db: Database) -> None:
    with db.transaction() as s:
        task_id = new_task(s, title="original").id
    with db.transaction() as s:
        with pytest.raises(ConflictError) as info:
            tasks.update_task(s, task_id, {"title": "renamed", "expected_status": "in_progress"})
        assert info.value.details == {"status": "pending", "expected_status": "in_progress"}
    with db.transaction() as s:
        claimed = tasks.update_task(
            s, task_id, {"status": "in_progress", "expected_status": "pending"}
        )
        assert claimed.status == TaskStatus.IN_PROGRESS
    with db.read() as s:
        task = tasks.get_task(s, task_id)
        assert (task.status, task.title) == (TaskStatus.IN_PROGRESS, "original")


def test_concurrent_claims_of_one_task_have_one_winner(db: Database) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
    with db.transaction() as s:
        agents = [new_agent(s, name=f"claimer-{i}").id for i in range(4)]
    start = threading.Barrier(len(agents))
    outcomes: dict[int, str] = {}

    def claim(agent_id: int) -> None:
        start.wait()
        change = {"status": "in_progress", "assigned_agent_id": agent_id}
        try:
            with db.transaction() as s:
                tasks.update_task(s, task_id, {**change, "expected_status": "pending"})
            outcomes[agent_id] = "won"
        except ConflictError:
            outcomes[agent_id] = "refused"

    threads = [threading.Thread(target=claim, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [a for a, outcome in outcomes.items() if outcome == "won"]
    assert len(outcomes) == len(agents) and len(winners) == 1
    with db.read() as s:
        assert tasks.get_task(s, task_id).assigned_agent_id == winners[0]


def test_subtask_cycles_are_rejected(session: Session) -> None:
    root = new_task(session)
    child = new_task(session, parent_task_id=root.id)
    grandchild = new_task(session, parent_task_id=child.id)
    for node, parent in [(root.id, root.id), (root.id, grandchild.id), (child.id, grandchild.id)]:
        with pytest.raises(ConflictError) as info:
            tasks.update_task(session, node, {"parent_task_id": parent})
        assert "parent_task_id" in info.value.details["fields"]
    assert tasks.get_task(session, root.id).parent_task_id is None
    other = new_task(session)
    assert (
        tasks.update_task(session, grandchild.id, {"parent_task_id": other.id}).parent_task_id
        == other.id
    )
