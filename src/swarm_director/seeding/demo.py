"""The demo data set: a director hierarchy with tasks, logs, drafts, emails and conversations.

Everything goes through the store, so counters and versions are exactly what production code
would produce. Seeding is idempotent: a database that already has the director is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from swarm_director.models import Agent, EmailStatus
from swarm_director.store import agents, conversations, drafts, emails, logs, tasks

DIRECTOR = "director"

#: (name, type, parent, description, capabilities)
HIERARCHY: tuple[tuple[str, str, str | None, str, list[str]], ...] = (
    (DIRECTOR, "supervisor", None, "Routes every incoming task", ["routing", "planning"]),
    ("communications", "coordinator", DIRECTOR, "Communications department", ["email"]),
    ("analysis", "coordinator", DIRECTOR, "Analysis department", ["analysis"]),
    ("draft_writer", "specialist", "communications", "Writes drafts", ["writing"]),
    ("draft_reviewer", "specialist", "communications", "Reviews drafts", ["review"]),
    ("email_agent", "specialist", "communications", "Sends email", ["smtp"]),
    ("analyst", "worker", "analysis", "Runs analyses", ["sql", "statistics"]),
)


@dataclass
class SeedResult:
    """What a seed run created (all zero when the data was already there)."""

    created: bool
    counts: dict[str, int] = field(default_factory=dict)


def seed_demo(session: Session) -> SeedResult:
    """Create the demo data set unless the director agent already exists."""
    if session.scalar(select(Agent.id).where(Agent.name == DIRECTOR)) is not None:
        return SeedResult(created=False)
    ids: dict[str, int] = {}
    for name, agent_type, parent, description, capabilities in HIERARCHY:
        agent = agents.create_agent(
            session,
            {
                "name": name,
                "agent_type": agent_type,
                "description": description,
                "capabilities": capabilities,
                "parent_id": ids[parent] if parent else None,
            },
        )
        ids[name] = agent.id

    reply = tasks.create_task(
        session,
        {
            "type": "email_draft",
            "title": "Reply to ACME about the delayed shipment",
            "user_id": "user-42",
            "priority": "high",
            "assigned_agent_id": ids["communications"],
        },
    )
    review = tasks.create_task(
        session,
        {
            "type": "document_review",
            "title": "Review the reply before it goes out",
            "parent_task_id": reply.id,
            "assigned_agent_id": ids["draft_reviewer"],
        },
    )
    report = tasks.create_task(
        session,
        {
            "type": "analysis",
            "title": "Weekly support-volume analysis",
            "user_id": "user-7",
            "assigned_agent_id": ids["analyst"],
        },
    )
    tasks.create_task(
        session, {"type": "communication", "title": "Announce the maintenance window"}
    )
    for task_id in (reply.id, review.id):
        tasks.update_task(session, task_id, {"status": "in_progress"})

    def log(agent: str, message: str, **extra: object) -> dict[str, object]:
        return {"agent_type": agent, "agent_id": ids[agent], "message": message, **extra}

    logs.add_logs(
        session,
        reply.id,
        [
            log(DIRECTOR, "Routed to communications"),
            log("draft_writer", "Draft v1 written", session_id="s-1"),
            log("draft_reviewer", "Tone too formal", log_level="warning", session_id="s-1"),
            log("draft_writer", "Draft v2 written", session_id="s-1", metadata={"tokens": 412}),
        ],
    )
    logs.add_logs(
        session,
        report.id,
        [
            log("analyst", "Query took 3.2 s", log_level="debug"),
            log("analyst", "Source table missing", log_level="error"),
        ],
    )

    writer, reviewer = ids["draft_writer"], ids["draft_reviewer"]
    first = drafts.create_draft(
        session,
        reply.id,
        {
            "content": "Dear ACME,\n\nWe regret to inform you of a delay.\n",
            "author_agent_id": writer,
        },
    )
    drafts.review_draft(
        session,
        first.id,
        {"status": "rejected", "reviewer_agent_id": reviewer, "review_notes": "Too formal"},
    )
    second = drafts.create_draft(
        session,
        reply.id,
        {
            "content": "Hi ACME team,\n\nYour shipment is two days late.\n",
            "author_agent_id": writer,
        },
    )
    drafts.review_draft(session, second.id, {"status": "approved", "reviewer_agent_id": reviewer})

    sent = emails.create_email(
        session,
        reply.id,
        {
            "recipient": "orders@acme.example",
            "subject": "Your shipment",
            "body": second.content,
            "sender": "support@swarm.example",
            "cc": ["account-manager@swarm.example"],
            "draft_id": second.id,
            "status": "queued",
        },
    )
    emails.set_email_status(session, sent.id, EmailStatus.SENT)
    emails.create_email(
        session,
        reply.id,
        {
            "recipient": "logistics@acme.example",
            "subject": "Shipment tracking",
            "body": "Tracking details attached.",
            "status": "queued",
        },
    )

    chat = conversations.create_conversation(
        session,
        {"title": "ACME reply", "task_id": reply.id, "created_by_agent_id": ids[DIRECTOR]},
    )
    for name in ("draft_writer", "draft_reviewer"):
        conversations.add_participant(session, chat.id, ids[name])
    conversations.add_message(
        session, chat.id, {"sender_agent_id": ids["draft_writer"], "content": "v2 is up for review"}
    )
    conversations.add_message(
        session, chat.id, {"sender_agent_id": ids["draft_reviewer"], "content": "Approved."}
    )
    return SeedResult(
        created=True,
        counts={"agents": len(HIERARCHY), "tasks": 4, "agent_logs": 6, "drafts": 2, "emails": 2},
    )
