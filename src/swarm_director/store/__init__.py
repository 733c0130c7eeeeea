"""The data-access layer agents and the API call: one module per aggregate.

Every function takes a :class:`~sqlalchemy.orm.Session` first, may flush, never commits, and
raises the typed errors of :mod:`swarm_director.errors`. Inputs are the pydantic bodies of
:mod:`swarm_director.schemas` or plain mappings of their fields. Usage from a worker::

    from swarm_director.store import logs, tasks

    with db.transaction() as session:
        task = tasks.create_task(session, {"type": "analysis", "title": "Q3 report"})
        logs.add_logs(session, task.id, [{"agent_type": "worker", "message": "started"}])
"""

from swarm_director.store import agents, conversations, drafts, emails, history, logs, tasks
from swarm_director.store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "agents",
    "conversations",
    "drafts",
    "emails",
    "history",
    "logs",
    "tasks",
]
