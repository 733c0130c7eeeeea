"""The work queue's tables and the statements its steps share, built once with bound
parameters (building a statement costs more than running it)."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, select, update

from swarm_director.enums import TaskStatus
from swarm_director.models import Agent, Task
from swarm_director.store._common import attribute_columns

TASKS: Table = Task.__table__  # type: ignore[assignment]
AGENTS: Table = Agent.__table__  # type: ignore[assignment]
TASK_COLUMNS = attribute_columns(Task)

# An update sets the columns named by its parameters' keys.
AGENT_SEEN = update(AGENTS).where(AGENTS.c.id == bindparam("agent_id"))
#: A claim's first statement: the agent's sign of life, and the check that it exists.
AGENT_CLAIMS = AGENT_SEEN.values(last_seen_at=bindparam("now")).returning(AGENTS.c.id)
UPDATE_TASK = update(TASKS).where(TASKS.c.id == bindparam("task_id"))
UPDATE_TASK_RETURNING = UPDATE_TASK.returning(*TASK_COLUMNS)
#: The task's row, locked against other writers (not against a foreign key's check).
HOLDER = (
    select(*TASK_COLUMNS).where(TASKS.c.id == bindparam("task_id")).with_for_update(key_share=True)
)
#: Tasks in progress whose lease ran out by ``now``.
EXPIRED_WHERE = (
    TASKS.c.status == TaskStatus.IN_PROGRESS,
    TASKS.c.lease_expires_at <= bindparam("now"),
)
