"""Agents: CRUD, unique names, hierarchy without cycles, deletion nulls references."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import Agent, AgentStatus
from swarm_director.store import agents
from tests.store.conftest import new_agent


def test_create_get_update_list_delete(session: Session) -> None:
    boss = new_agent(session, name="director", agent_type="supervisor", capabilities=["route"])
    assert boss.id > 0 and boss.status is AgentStatus.IDLE and boss.config == {}
    assert agents.get_agent(session, boss.id).capabilities == ["route"]

    worker = new_agent(session, name="writer", parent_id=boss.id)
    updated = agents.update_agent(session, worker.id, {"status": "busy", "description": "drafts"})
    assert (updated.status, updated.description, updated.parent_id) == ("busy", "drafts", boss.id)

    by_parent = agents.list_agents(session, {"parent_id": boss.id})
    assert [a.name for a in by_parent.items] == ["writer"] and by_parent.next_cursor is None
    assert [a.name for a in agents.list_agents(session, {"status": AgentStatus.BUSY}).items] == [
        "writer"
    ]
    assert [a.name for a in agents.list_agents(session, {"agent_type": "supervisor"}).items] == [
        "director"
    ]

    agents.delete_agent(session, worker.id)
    with pytest.raises(NotFoundError):
        agents.get_agent(session, worker.id)


def test_duplicate_name_is_a_conflict(session: Session) -> None:
    new_agent(session, name="director")
    with pytest.raises(ConflictError) as info:
        new_agent(session, name="director")
    assert info.value.details["fields"] == {"name": "already taken"}
    other = new_agent(session, name="other")
    with pytest.raises(ConflictError):
        agents.update_agent(session, other.id, {"name": "director"})
    # Renaming to its own name is not a conflict.
    assert agents.update_agent(session, other.id, {"name": "other"}).name == "other"


def test_invalid_input_names_the_field(session: Session) -> None:
    with pytest.raises(ValidationError) as info:
        agents.create_agent(session, {"name": "", "agent_type": "worker", "extra": 1})
    assert set(info.value.details["fields"]) == {"name", "extra"}


def test_missing_parent_is_a_validation_error(session: Session) -> None:
    with pytest.raises(ValidationError) as info:
        new_agent(session, parent_id=999)
    assert "parent_id" in info.value.details["fields"]
    agent = new_agent(session)
    with pytest.raises(ValidationError):
        agents.update_agent(session, agent.id, {"parent_id": 999})


def test_missing_agent_is_not_found(session: Session) -> None:
    with pytest.raises(NotFoundError):
        agents.update_agent(session, 42, {"status": "busy"})
    with pytest.raises(NotFoundError):
        agents.delete_agent(session, 42)


def test_hierarchy_cycles_are_rejected_and_change_nothing(db: Database) -> None:
    with db.transaction() as s:
        top = new_agent(s, name="top")
        mid = new_agent(s, name="mid", parent_id=top.id)
        low = new_agent(s, name="low", parent_id=mid.id)
        ids = (top.id, mid.id, low.id)
    with db.transaction() as s:
        for node, parent in [(ids[0], ids[0]), (ids[0], ids[2]), (ids[1], ids[2])]:
            with pytest.raises(ConflictError) as info:
                agents.update_agent(s, node, {"parent_id": parent, "status": "busy"})
            assert "parent_id" in info.value.details["fields"]
    with db.read() as s:
        rows = {a.id: (a.parent_id, a.status) for a in agents.list_agents(s).items}
    assert rows == {ids[0]: (None, "idle"), ids[1]: (ids[0], "idle"), ids[2]: (ids[1], "idle")}
    with db.transaction() as s:  # moving within the tree is fine, so is detaching
        assert agents.update_agent(s, ids[2], {"parent_id": ids[0]}).parent_id == ids[0]
        assert agents.update_agent(s, ids[1], {"parent_id": None}).parent_id is None


def test_concurrent_moves_cannot_create_a_cycle(db: Database) -> None:
    with db.transaction() as s:
        a, b = new_agent(s, name="a").id, new_agent(s, name="b").id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def move(node: int, parent: int) -> None:
        barrier.wait()
        try:
            with db.transaction() as s:
                agents.update_agent(s, node, {"parent_id": parent})
            outcomes.append("moved")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=move, args=args) for args in [(a, b), (b, a)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "moved"]
    with db.read() as s:
        parents = {x.id: x.parent_id for x in s.query(Agent)}
    assert None in parents.values()
