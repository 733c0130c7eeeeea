"""The work queue's tables and the statements its steps share, built once with bound
parameters (building a statement costs more than running it).

The hot path (a claim, heartbeat, completion or failure) runs :class:`~swarm_director.store.
prepared.Prepared` statements: compiled once per dialect and run on the driver's cursor, they
cost the driver's time and little more (``bench/work_queue.py``). Each sets every column it
changes from its parameters, ``updated_at`` too (a prepared statement runs no Python-side
default). The rarer steps (expiry, requeue, the lists) run plain Core statements.
"""

from __future__ import annotations

from sqlalchemy import Table, bindparam, insert, select, update

from swarm_director.enums import TaskStatus
from swarm_director.models import Agent, HistoryEntry, Task
from swarm_director.store._common import attribute_columns
from swarm_director.store.prepared import Prepared

TASKS: Table = Task.__table__  # type: ignore[assignment]
AGENTS: Table = Agent.__table__  # type: ignore[assignment]
_HISTORY: Table = HistoryEntry.__table__  # type: ignore[assignment]
TASK_COLUMNS = attribute_columns(Task)

# An update sets the columns named by its parameters' keys.
UPDATE_TASK = update(TASKS).where(TASKS.c.id == bindparam("task_id"))
UPDATE_TASK_RETURNING = UPDATE_TASK.returning(*TASK_COLUMNS)
#: The task's row, locked against other writers (not against a foreign key's check).
_HOLDER = (
    select(*TASK_COLUMNS).where(TASKS.c.id == bindparam("task_id")).with_for_update(key_share=True)
)
HOLDER = Prepared(_HOLDER)
#: Tasks in progress whose lease ran out by ``now``.
EXPIRED_WHERE = (
    TASKS.c.status == TaskStatus.IN_PROGRESS,
    TASKS.c.lease_expires_at <= bindparam("now"),
)


def _sets(*names: str) -> dict[str, object]:
    return {name: bindparam(name) for name in names}


_AGENT_SEEN = (
    update(AGENTS)
    .where(AGENTS.c.id == bindparam("agent_id"))
    .values(last_seen_at=bindparam("now"), updated_at=bindparam("now"))
)
#: An agent's sign of life (a heartbeat's).
AGENT_SEEN = Prepared(_AGENT_SEEN)
#: A claim's first statement: the agent's sign of life, and the check that it exists.
AGENT_CLAIMS = Prepared(_AGENT_SEEN.returning(AGENTS.c.id))
#: A claim takes a ready task.
TAKE = Prepared(
    UPDATE_TASK.values(
        status=TaskStatus.IN_PROGRESS,
        not_before=None,
        updated_at=bindparam("now"),
        claimed_at=bindparam("now"),
        **_sets("assigned_agent_id", "attempts", "lease_token", "lease_expires_at"),
    ).returning(*TASK_COLUMNS)
)
#: A heartbeat moves the lease's end.
EXTEND = Prepared(UPDATE_TASK.values(updated_at=bindparam("now"), **_sets("lease_expires_at")))
#: A completion ends the lease with the result.
COMPLETE = Prepared(
    UPDATE_TASK.values(
        status=TaskStatus.COMPLETED,
        lease_token=None,
        lease_expires_at=None,
        completed_at=bindparam("now"),
        updated_at=bindparam("now"),
        **_sets("result"),
    ).returning(*TASK_COLUMNS)
)
#: A failure ends the lease: back to pending after a backoff, or failed for good.
FAIL = Prepared(
    UPDATE_TASK.values(
        lease_token=None,
        lease_expires_at=None,
        updated_at=bindparam("now"),
        **_sets("status", "assigned_agent_id", "not_before", "last_error"),
    ).returning(*TASK_COLUMNS)
)
#: A history row (its values from :func:`~swarm_director.store.history.entry_values`).
HISTORY = Prepared(
    insert(_HISTORY)
    .values(**_sets("entity", "entity_id", "action", "changes", "actor", "request_id", "at"))
    .inline()  # nothing to read back (else PostgreSQL would return the new row's id)
)
