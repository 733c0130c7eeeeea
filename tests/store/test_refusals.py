"""Values no column can hold are refused with the store's typed errors, never a driver error.

PostgreSQL refuses to compare an ``integer`` column with 2**31, to store or compare text
holding U+0000, and to compare a varchar with a number; SQLAlchemy fails to bind an unknown
enum value. Each must come back as NotFoundError or ValidationError on both databases.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from swarm_director.errors import NotFoundError, ValidationError
from swarm_director.store import agents, conversations, drafts, emails, logs, tasks
from tests.store.conftest import new_task

HUGE = 2**40  # beyond PostgreSQL integer
HUGER = 2**70  # beyond bigint


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


NOT_FOUND: dict[str, Callable[[Session], Any]] = {
    "get_agent": lambda s: agents.get_agent(s, HUGE),
    "update_task": lambda s: tasks.update_task(s, HUGE, {"status": "failed"}),
    "delete_task": lambda s: tasks.delete_task(s, -HUGE),
    "add_logs": lambda s: logs.add_logs(s, HUGE, [{"agent_type": "w", "message": "m"}]),
    "get_draft_version": lambda s: drafts.get_draft_version(s, HUGE, HUGE),
    "set_email_status": lambda s: emails.set_email_status(s, HUGE, "sent"),
    "get_message": lambda s: conversations.get_message(s, HUGER),
    "remove_participant": lambda s: conversations.remove_participant(
        s, conversations.create_conversation(s, {"title": "t"}).id, HUGE
    ),
}

INVALID: dict[str, tuple[Callable[[Session], Any], str]] = {
    "agents cursor": (
        lambda s: agents.list_agents(s, cursor=_cursor("agents:asc", HUGE)),
        "cursor",
    ),
    "logs cursor": (
        lambda s: logs.list_logs(
            s, cursor=_cursor("logs:desc", "2026-01-01T00:00:00+00:00", HUGER)
        ),
        "cursor",
    ),
    "id filter": (lambda s: tasks.list_tasks(s, {"assigned_agent_id": HUGE}), "assigned_agent_id"),
    "NUL filter": (lambda s: tasks.list_tasks(s, {"user_id": "a\x00b"}), "user_id"),
    "number for text": (lambda s: tasks.list_tasks(s, {"user_id": 5}), "user_id"),
    "unknown enum": (lambda s: emails.list_emails(s, {"status": "lost"}), "status"),
    "unknown level": (lambda s: logs.list_logs(s, {"level": "loud"}), "level"),
    "text for time": (lambda s: logs.list_logs(s, {"since": "yesterday"}), "since"),
    "text for bool": (
        lambda s: conversations.list_participants(
            s,
            conversations.create_conversation(s, {"title": "t"}).id,
            active="yes",  # type: ignore[arg-type]
        ),
        "active",
    ),
    "NUL in title": (
        lambda s: tasks.create_task(s, {"type": "analysis", "title": "a\x00b"}),
        "title",
    ),
    "NUL in JSON key": (
        lambda s: conversations.create_conversation(s, {"title": "t", "metadata": {"k\x00": 1}}),
        "metadata",
    ),
    "NUL in bulk log": (
        lambda s: logs.add_logs(
            s,
            new_task(s).id,
            [{"agent_type": "w", "message": "ok"}, {"agent_type": "w", "message": "\x00"}],
        ),
        "[1].message",
    ),
}


@pytest.mark.parametrize("name", sorted(NOT_FOUND))
def test_ids_out_of_column_range_are_not_found(session: Session, name: str) -> None:
    with pytest.raises(NotFoundError):
        NOT_FOUND[name](session)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_values_no_column_can_hold_are_validation_errors(session: Session, name: str) -> None:
    call, field = INVALID[name]
    with pytest.raises(ValidationError) as info:
        call(session)
    assert field in info.value.details["fields"]
    # The transaction is still usable: nothing reached the database.
    assert agents.list_agents(session).items == []
