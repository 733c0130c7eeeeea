"""Console actions on agents and drafts: take an agent offline or bring it back online;
approve a draft or send it back with review notes (see :mod:`.forms` for the checks).

Through the store functions of ``PATCH /api/agents/<id>``
(:func:`~swarm_director.store.agents.update_agent`) and ``PATCH /api/drafts/<id>``
(:func:`~swarm_director.store.drafts.review_draft`); each form carries the row's change stamp.
"""

from __future__ import annotations

from flask import request, url_for
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.console.common import bp
from swarm_director.console.forms import (
    action,
    back_to,
    bad_field,
    confirm_first,
    done,
    form_enum,
    form_text,
    seen,
)
from swarm_director.enums import ApiScope
from swarm_director.errors import ConflictError
from swarm_director.models import Agent, AgentStatus, Draft, DraftStatus
from swarm_director.store import agents, drafts
from swarm_director.store.preconditions import unchanged
from swarm_director.web.context import session

#: What the agent form may set: offline, or back to idle (online, waiting for work).
AGENT_STATES = (AgentStatus.OFFLINE, AgentStatus.IDLE)
#: Drafts a review may still decide.
OPEN_DRAFTS = (DraftStatus.DRAFT, DraftStatus.UNDER_REVIEW)


@bp.post("/agents/<int:agent_id>/status")
@action(ApiScope.WRITE)
def set_agent_status(agent_id: int) -> BaseResponse | str:
    """Offline (asks first) or back online as idle (``PATCH`` status)."""
    status = form_enum("status", AgentStatus, AGENT_STATES)
    back = back_to(url_for("console.agent_page", agent_id=agent_id))
    agent = unchanged(session(), Agent, agent_id, "agent", seen())
    if agent.status is status:
        raise ConflictError(f"agent {agent_id} is {status.value} already; nothing was changed")
    if status is AgentStatus.OFFLINE:
        asked = confirm_first(
            f"Take agent {agent_id} ({agent.name}) offline?", "Take it offline", back
        )
        if asked is not None:
            return asked
    agents.update_agent(session(), agent_id, {"status": status})
    word = "offline" if status is AgentStatus.OFFLINE else "back online (idle)"
    return done(f"Agent {agent_id} is {word}.", back)


@bp.post("/drafts/<int:draft_id>/review")
@action(ApiScope.WRITE)
def review_draft(draft_id: int) -> BaseResponse:
    """Approve the draft, or send it back (rejected) with notes for its writer (``PATCH``
    status and review_notes); a draft already decided is left alone."""
    decision = _decision()
    notes = form_text("notes", required=decision is DraftStatus.REJECTED)
    draft = unchanged(session(), Draft, draft_id, "draft", seen())
    back = back_to(
        url_for("console.task_page", task_id=draft.task_id, version=draft.version) + "#h-drafts"
    )
    if draft.status not in OPEN_DRAFTS:
        raise ConflictError(
            f"draft {draft_id} was {draft.status.value} already; nothing was changed"
        )
    fields: dict[str, object] = {"status": decision}
    if notes is not None:
        fields["review_notes"] = notes
    drafts.review_draft(session(), draft_id, fields)
    word = "approved" if decision is DraftStatus.APPROVED else "sent back to its writer"
    return done(f"Version {draft.version} of task {draft.task_id}'s draft is {word}.", back)


def _decision() -> DraftStatus:
    """The review's decision: ``approve`` or ``send_back``."""
    raw = request.form.get("decision", "")
    if raw == "approve":
        return DraftStatus.APPROVED
    if raw == "send_back":
        return DraftStatus.REJECTED
    raise bad_field("decision", "must be approve or send_back")
