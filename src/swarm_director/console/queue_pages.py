"""The console's work queue page: what needs a person. Tasks stuck on an expired lease
(their agent stopped), tasks that used up their attempts, drafts waiting for a review, and
agents silent for longer than ``SWARM_AGENT_SILENT_AFTER``; each row with its action."""

from __future__ import annotations

from swarm_director.console.common import bp, render
from swarm_director.db.base import utcnow
from swarm_director.durations import format_duration
from swarm_director.store import agents, browse, drafts, queue
from swarm_director.web.context import connection, session, state

#: Rows a section of the page lists at most.
SECTION_ROWS = 200


@bp.get("/queue")
def queue_page() -> str:
    """Expired leases (requeue), dead tasks (retry), drafts to review, silent agents."""
    now = utcnow()
    stuck = queue.list_expired_leases(connection(), now=now)[:SECTION_ROWS]
    dead = queue.list_dead_tasks(connection())[:SECTION_ROWS]
    s = session()
    review = drafts.list_drafts_for_review(s, limit=SECTION_ROWS)
    silent_after = state().settings.agent_silent_after
    silent = agents.list_silent_agents(s, now - silent_after, limit=SECTION_ROWS)
    ids = [t.assigned_agent_id for t in (*stuck, *dead)]
    ids += [d.author_agent_id for d in review]
    return render(
        "queue.html",
        title="Work queue",
        api=["/api/tasks/expired-leases", "/api/tasks/dead"],
        stuck=stuck,
        dead=dead,
        review=review,
        silent=silent,
        silent_after=format_duration(silent_after),
        now=now,
        names=browse.agent_names(s, ids),
    )
