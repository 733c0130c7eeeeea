"""Lock order on PostgreSQL: counter updates of one conversation never deadlock.

Found by the contention test: ``remove_participant`` updated the membership row and then the
conversation, while ``add_message`` updated the conversation and then the membership row, so
an agent leaving while its message was being posted deadlocked (PostgreSQL aborted one of
them with "deadlock detected", a 503 for an API caller). This test replays that interleaving
deterministically: the leave is paused just before it updates the conversation, the message
is started and left to block, then the leave goes on.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from swarm_director.db import Database
from swarm_director.errors import ValidationError
from swarm_director.models import Conversation
from swarm_director.store import agents, conversations

WAIT_S = 20.0


def _waiting_on_lock(db: Database, pid: int) -> bool:
    with db.engine.connect() as conn:
        kind = conn.scalar(
            sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return kind == "Lock"


# SQLite serializes writers with BEGIN IMMEDIATE: no row locks to order
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_leaving_while_a_message_is_posted_does_not_deadlock(db: Database, dialect: str) -> None:
    with db.transaction() as session:
        agent = agents.create_agent(session, {"name": "leaver", "agent_type": "worker"}).id
        conv = conversations.create_conversation(session, {"title": "c"}).id
        conversations.add_participant(session, conv, agent)

    leave_paused = threading.Event()
    leave_go = threading.Event()
    outcome: dict[str, Any] = {}
    leave_thread_id: list[int] = []

    def pause_before_conversation_update(
        conn: Any, cursor: Any, statement: str, *_args: Any
    ) -> None:
        if threading.get_ident() in leave_thread_id and statement.startswith(
            "UPDATE conversations"
        ):
            leave_paused.set()
            leave_go.wait(WAIT_S)

    def leave() -> None:
        leave_thread_id.append(threading.get_ident())
        try:
            with db.transaction() as session:
                conversations.remove_participant(session, conv, agent)
            outcome["leave"] = "ok"
        except Exception as error:
            outcome["leave"] = error

    def post(pid_box: list[int]) -> None:
        try:
            with db.transaction() as session:
                pid_box.append(session.scalar(sa.text("SELECT pg_backend_pid()")))
                conversations.add_message(
                    session, conv, {"content": "hi", "sender_agent_id": agent}
                )
            outcome["post"] = "ok"
        except ValidationError as error:  # the sender left first: a clear refusal
            outcome["post"] = error
        except Exception as error:
            outcome["post"] = error

    event.listen(db.engine, "before_cursor_execute", pause_before_conversation_update)
    try:
        leaver = threading.Thread(target=leave)
        leaver.start()
        assert leave_paused.wait(WAIT_S), "the leave never reached its conversation update"
        pid_box: list[int] = []
        poster = threading.Thread(target=post, args=(pid_box,))
        poster.start()
        deadline = time.monotonic() + WAIT_S
        # Until the message is blocked on a lock the leave holds (or it finished without one).
        while poster.is_alive() and time.monotonic() < deadline:
            if pid_box and _waiting_on_lock(db, pid_box[0]):
                break
            time.sleep(0.02)
        leave_go.set()
        leaver.join(WAIT_S)
        poster.join(WAIT_S)
    finally:
        leave_go.set()
        event.remove(db.engine, "before_cursor_execute", pause_before_conversation_update)

    for name in ("leave", "post"):
        result = outcome.get(name)
        assert result == "ok" or isinstance(result, ValidationError), f"{name}: {result!r}"
    with db.read() as session:
        stored = session.get(Conversation, conv)
        assert stored is not None
        assert stored.participant_count == 0
        assert stored.message_count == (1 if outcome["post"] == "ok" else 0)
