"""The console's work queue page: tasks stuck on an expired lease (their agent stopped) and
tasks that used up their attempts."""

from __future__ import annotations

from swarm_director.console.common import bp, render
from swarm_director.store import browse, queue
from swarm_director.web.context import connection, session


@bp.get("/queue")
def queue_page() -> str:
    """Expired leases (the next claim takes them over) and dead tasks (failed for good)."""
    stuck = queue.expired_leases(connection())
    dead = queue.dead_tasks(connection())
    ids = [t.assigned_agent_id for t in (*stuck, *dead)]
    return render(
        "queue.html",
        title="Work queue",
        api=["/api/tasks/expired-leases", "/api/tasks/dead"],
        stuck=stuck,
        dead=dead,
        names=browse.agent_names(session(), ids),
    )
