"""The data-access layer agents and the API call: one module per aggregate.

No function commits (the caller's transaction boundary does, once); they may flush and raise
the typed errors of :mod:`swarm_director.errors`. The first argument says what a function
needs: a :class:`~sqlalchemy.orm.Session` for writes and for reads that return ORM objects;
``source`` (a Session or a Connection) for Core reads that return read-only rows with the
model's attribute names (logs, history, :func:`.tasks.read_task`) and for the work queue; a
:class:`~sqlalchemy.Connection` for per-request bookkeeping (API keys, console sessions). Which
entity is read which way, and why: docs/development.md, "The store". Inputs are the pydantic
bodies of :mod:`swarm_director.schemas` or plain mappings of their fields. Usage from a
worker::

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
