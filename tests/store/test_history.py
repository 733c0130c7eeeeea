"""History: every create, update and delete of a tracked entity is recorded with its actor,
in the transaction of the change."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database, utcnow
from swarm_director.db.actor import acting_as, cli_actor, current_actor
from swarm_director.errors import ValidationError
from swarm_director.models import HistoryEntry
from swarm_director.store import conversations, drafts, emails, history, keys, tasks
from tests.store.conftest import new_agent, new_task


def _rows(db: Database, entity: str, entity_id: int) -> list[sa.Row]:
    with db.statement_reads() as conn:
        return list(history.list_history(conn, {"entity": entity, "entity_id": entity_id}).items)


def test_a_task_s_life_is_recorded_field_by_field_with_its_actor(db: Database) -> None:
    with acting_as("agent-key", request_id="req-1"), db.transaction() as session:
        task = new_task(session, title="Write report", priority="low")
        task_id = task.id
    with acting_as("reviewer"), db.transaction() as session:
        tasks.update_task(session, task_id, {"priority": "high", "status": "in_progress"})
    with acting_as("ops"), db.transaction() as session:
        tasks.delete_task(session, task_id)

    created, updated, deleted = _rows(db, "task", task_id)
    assert (created.action, created.actor, created.request_id) == ("create", "agent-key", "req-1")
    assert created.changes["title"] == [None, "Write report"]
    assert created.changes["status"] == [None, "pending"]
    assert "updated_at" not in created.changes
    assert (updated.action, updated.actor) == ("update", "reviewer")
    assert updated.changes == {
        "priority": ["low", "high"],
        "status": ["pending", "in_progress"],
    }
    assert (deleted.action, deleted.actor) == ("delete", "ops")
    assert deleted.changes["title"] == ["Write report", None]


def test_a_rolled_back_change_leaves_no_history(db: Database) -> None:
    with db.transaction() as session:
        task_id = new_task(session).id
    with pytest.raises(RuntimeError), db.transaction() as session:
        tasks.update_task(session, task_id, {"title": "never"})
        session.flush()
        raise RuntimeError("the request failed after the change")
    assert [row.action for row in _rows(db, "task", task_id)] == ["create"]


def test_an_update_that_changes_nothing_records_nothing(db: Database) -> None:
    with db.transaction() as session:
        task_id = new_task(session, title="same").id
    with db.transaction() as session:
        tasks.update_task(session, task_id, {"title": "same"})
    assert [row.action for row in _rows(db, "task", task_id)] == ["create"]


def test_every_tracked_entity_is_recorded(db: Database) -> None:
    with acting_as("writer"), db.transaction() as session:
        agent = new_agent(session)
        task = new_task(session)
        draft = drafts.create_draft(session, task.id, {"content": "v1"})
        email = emails.create_email(
            session, task.id, {"recipient": "a@example.com", "subject": "s", "body": "b"}
        )
        chat = conversations.create_conversation(session, {"title": "chat"})
        conversations.add_participant(session, chat.id, agent.id)
        message = conversations.add_message(
            session, chat.id, {"content": "hi", "sender_agent_id": agent.id}
        )
        key = keys.create_key(session, "robot", "read").key
        ids = {
            "agent": agent.id,
            "task": task.id,
            "draft": draft.id,
            "email": email.id,
            "conversation": chat.id,
            "message": message.id,
            "api_key": key.id,
        }
    for entity, entity_id in ids.items():
        rows = _rows(db, entity, entity_id)
        assert [(r.action, r.actor) for r in rows] == [("create", "writer")], entity
    with db.statement_reads() as conn:
        participants = history.list_history(conn, {"entity": "participant"}).items
        api_key = history.list_history(conn, {"entity": "api_key"}).items[0]
    assert [p.changes["agent_id"][1] for p in participants] == [agent.id]
    assert "secret_hash" not in api_key.changes  # never the secret, not even hashed


def test_the_actor_defaults_to_the_local_user_and_the_cli_names_itself() -> None:
    assert current_actor().name.startswith("local:")
    assert cli_actor().startswith("cli:") and "@" in cli_actor()
    with acting_as("x" * 500) as actor:
        assert len(actor.name) == 200


def test_the_swarm_wide_history_filters_and_pages(db: Database) -> None:
    with acting_as("a"), db.transaction() as session:
        first = new_task(session).id
    with acting_as("b"), db.transaction() as session:
        second = new_task(session).id
        tasks.update_task(session, second, {"title": "renamed"})
    with db.statement_reads() as conn:
        by_b = history.list_history(conn, {"actor": "b"}).items
        assert [(r.entity_id, r.action) for r in by_b] == [(second, "create"), (second, "update")]
        newest = history.list_history(conn, order="desc", limit=1)
        assert newest.items[0].action == "update" and newest.next_cursor is not None
        rest = history.list_history(conn, order="desc", limit=5, cursor=newest.next_cursor)
        assert [r.entity_id for r in rest.items] == [second, first]
        assert history.list_history(conn, {"since": utcnow() + timedelta(minutes=1)}).items == []
        assert (
            len(history.list_history(conn, {"until": utcnow() + timedelta(minutes=1)}).items) == 3
        )
        updates = history.list_history(conn, {"action": "update"}).items
        assert [r.entity_id for r in updates] == [second]
        with pytest.raises(ValidationError):
            history.list_history(conn, {"entity": "log"})


def test_prune_deletes_only_older_rows(db: Database) -> None:
    with db.transaction() as session:
        new_task(session)
    with db.engine.begin() as conn:
        assert history.prune_history(conn, utcnow() - timedelta(days=1)) == 0
        assert history.prune_history(conn, utcnow() + timedelta(seconds=1)) == 1
        assert conn.scalar(sa.select(sa.func.count()).select_from(HistoryEntry)) == 0


def test_a_cli_command_run_in_process_leaves_no_actor_behind(tmp_path: Path) -> None:
    before = current_actor()
    result = CliRunner().invoke(cli, ["config", "show"], env={"SWARM_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert current_actor() == before


def test_participants_leaving_and_rejoining_and_message_edits_are_recorded(db: Database) -> None:
    with db.transaction() as session:
        agent = new_agent(session).id
        chat = conversations.create_conversation(session, {"title": "c"}).id
        member = conversations.add_participant(session, chat, agent, role="writer").id
        message = conversations.add_message(session, chat, {"content": "v1"}).id
    with db.transaction() as session:
        conversations.remove_participant(session, chat, agent)
        conversations.add_participant(session, chat, agent, role="editor")
        conversations.edit_message(session, message, {"content": "v2"})
    left, back = _rows(db, "participant", member)[1:]
    assert left.changes["is_active"] == [True, False] and left.changes["left_at"][1]
    assert back.changes["is_active"] == [False, True]
    assert back.changes["role"] == ["writer", "editor"]
    edit = _rows(db, "message", message)[-1]
    assert (edit.action, edit.changes["content"], edit.changes["edit_count"]) == (
        "update",
        ["v1", "v2"],
        [0, 1],
    )
