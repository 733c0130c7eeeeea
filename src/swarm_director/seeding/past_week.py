"""A past for the demo swarm: days of work driven through the work queue, so that reports and
charts have a realistic spread (busier by day than by night, retries, lease expiries, failures
of a few recurring kinds, logs of every level, drafts that take a few versions, emails that
bounce).

Every step goes through the store (the queue's claim, complete and fail with their ``now``,
history rows at that time through :func:`~swarm_director.models.recording.recorded_at`); only
the creation times of tasks and the times of drafts' reviews and emails' sending, which the
store sets to the wall clock, are moved back with one UPDATE each. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from swarm_director.db.base import utcnow
from swarm_director.enums import TaskType
from swarm_director.models import Agent, Draft, EmailMessage, Task
from swarm_director.models.recording import recorded_at
from swarm_director.store import drafts, emails, logs, queue, tasks

#: The marker of a grown past: its tasks carry this user id (seeding twice grows it once).
PAST_USER = "demo-past"
#: Which demo agent works on which task type.
WORKERS = {
    "email_draft": "draft_writer",
    "document_review": "draft_reviewer",
    "communication": "email_agent",
    "analysis": "analyst",
}
#: Failures recur with varying numbers in them (the reports group them).
FAILURES = (
    "model timeout after {n} s",
    "rate limited by upstream (retry in {n} s)",
    "source table sales_{n} missing",
    "SMTP 451 temporary failure for message {n}",
)
NOTES = (
    "routed by the director",
    "context loaded ({n} documents)",
    "tool call search took {n} ms",
    "wrote {n} tokens",
)


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _rate(at: datetime) -> float:
    """Tasks per hour: busy in office hours, quiet at night and on weekends."""
    busy = 9 <= at.hour < 18
    weekend = at.weekday() >= 5
    return (7.0 if busy else 1.5) * (0.4 if weekend else 1.0)


def grow_past(
    session: Session, days: float = 7.0, *, now: datetime | None = None, seed: int = 7
) -> dict[str, int]:
    """Add ``days`` of past work ending at ``now``, unless it was grown already; returns the
    rows added by kind (empty when it was there). The demo's agents must exist."""
    if session.scalar(select(Task.id).where(Task.user_id == PAST_USER).limit(1)) is not None:
        return {}
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    end = now or utcnow()
    agent_ids: dict[str, int] = {n: i for n, i in session.execute(select(Agent.name, Agent.id))}
    clock = _Clock(end - timedelta(days=days))
    counts = {"tasks": 0, "agent_logs": 0, "drafts": 0, "emails": 0}
    t = clock.now
    with recorded_at(clock):
        while True:
            t += timedelta(hours=rng.expovariate(_rate(t)))
            if t >= end - timedelta(minutes=20):
                break
            _one(session, rng, clock, agent_ids, t, end, counts)
        _in_flight(session, rng, clock, agent_ids, end, counts)
    return counts


def _one(
    session: Session,
    rng: random.Random,
    clock: _Clock,
    agent_ids: dict[str, int],
    t: datetime,
    end: datetime,
    counts: dict[str, int],
) -> None:
    kind = rng.choice(list(WORKERS))
    worker = agent_ids[WORKERS[kind]]
    clock.now = t
    task = tasks.create_task(
        session,
        {
            "type": kind,
            "title": f"{kind.replace('_', ' ').capitalize()} #{counts['tasks'] + 1}",
            "user_id": PAST_USER,
            "priority": rng.choices(("low", "medium", "high", "critical"), (3, 6, 2, 1))[0],
            "max_attempts": rng.choices((1, 2, 3), (2, 3, 5))[0],
        },
    )
    session.execute(update(Task).where(Task.id == task.id).values(created_at=t, updated_at=t))
    counts["tasks"] += 1
    flaky = {"analysis": 0.25, "communication": 0.15}.get(kind, 0.08)
    entries: list[dict[str, Any]] = []
    ready = t
    for _attempt in range(task.max_attempts):
        clock.now = min(ready + timedelta(seconds=rng.expovariate(1 / 90)), end)
        claim = _claim(session, worker, kind, task.id, clock.now)
        if claim is None:  # its last lease expired: failed for good
            break
        started = clock.now
        entries.append(_log(rng, worker, kind, "info", "claimed", started))
        run = timedelta(seconds=rng.lognormvariate(3.0 if kind != "analysis" else 4.0, 0.6))
        if rng.random() < 0.03:  # the worker died: the lease runs out
            clock.now = min(claim.lease_expires_at + timedelta(seconds=5), end)
            queue.expire_leases(session, clock.now)
            entries.append(_log(rng, worker, kind, "warning", "lease lost", clock.now))
            ready = clock.now
            continue
        clock.now = min(started + run, end)
        for _ in range(rng.randint(1, 4)):
            at = started + (clock.now - started) * rng.random()
            level = rng.choices(("debug", "info", "warning"), (3, 6, 1))[0]
            entries.append(_log(rng, worker, kind, level, rng.choice(NOTES), at))
        if rng.random() < flaky:
            error = rng.choice(FAILURES).format(n=rng.randint(2, 900))
            entries.append(_log(rng, worker, kind, "error", error, clock.now))
            row = queue.fail_task(session, task.id, claim.lease_token, error, now=clock.now)
            if row.status.value == "failed":
                break
            ready = row.not_before or clock.now
            continue
        queue.complete_task(session, task.id, claim.lease_token, result={"ok": True}, now=clock.now)
        _outputs(session, rng, kind, task.id, agent_ids, clock.now, counts)
        break
    logs.add_logs(session, task.id, entries)
    counts["agent_logs"] += len(entries)


def _claim(
    session: Session, worker: int, kind: str, task_id: int, now: datetime
) -> queue.Claim | None:
    """The claim of ``task_id``; older ready work of its type (the demo's own pending tasks)
    is claimed first and completed on the spot, as a worker would."""
    while True:
        claims = queue.claim_tasks(session, worker, types=[TaskType(kind)], lease_s=300, now=now)
        if not claims or claims[0].task.id == task_id:
            return claims[0] if claims else None
        queue.complete_task(session, claims[0].task.id, claims[0].lease_token, now=now)


def _log(
    rng: random.Random, agent_id: int, kind: str, level: str, text: str, at: datetime
) -> dict[str, Any]:
    return {
        "agent_type": WORKERS[kind],
        "agent_id": agent_id,
        "message": text.format(n=rng.randint(2, 900)),
        "log_level": level,
        "timestamp": at,
    }


def _outputs(
    session: Session,
    rng: random.Random,
    kind: str,
    task_id: int,
    agent_ids: dict[str, int],
    at: datetime,
    counts: dict[str, int],
) -> None:
    """A completed email draft leaves its versions (the last approved); a completed
    communication sends its email (a few bounce)."""
    if kind == "email_draft":
        versions = rng.choices((1, 2, 3, 4), (4, 3, 2, 1))[0]
        for version in range(1, versions + 1):
            draft = drafts.create_draft(
                session,
                task_id,
                {"content": f"Draft {version}", "author_agent_id": agent_ids["draft_writer"]},
            )
            verdict = "approved" if version == versions else "rejected"
            drafts.review_draft(
                session,
                draft.id,
                {"status": verdict, "reviewer_agent_id": agent_ids["draft_reviewer"]},
            )
            session.execute(update(Draft).where(Draft.id == draft.id).values(updated_at=at))
            counts["drafts"] += 1
    elif kind == "communication":
        email = emails.create_email(
            session,
            task_id,
            {
                "recipient": f"customer{rng.randint(1, 99)}@example.com",
                "subject": "Update on your request",
                "body": "Hello,\n\nhere is the update.\n",
                "status": "queued",
            },
        )
        if rng.random() < 0.12:
            emails.set_email_status(session, email.id, "failed", "mailbox unavailable")
        else:
            emails.set_email_status(session, email.id, "sent")
            session.execute(
                update(EmailMessage).where(EmailMessage.id == email.id).values(sent_at=at)
            )
        counts["emails"] += 1


def _in_flight(
    session: Session,
    rng: random.Random,
    clock: _Clock,
    agent_ids: dict[str, int],
    end: datetime,
    counts: dict[str, int],
) -> None:
    """The last minutes: a few tasks waiting and one being worked on."""
    for i in range(4):
        clock.now = end - timedelta(minutes=15 - 3 * i)
        kind = list(WORKERS)[i]
        task = tasks.create_task(
            session,
            {"type": kind, "title": f"Waiting {kind.replace('_', ' ')}", "user_id": PAST_USER},
        )
        session.execute(update(Task).where(Task.id == task.id).values(created_at=clock.now))
        counts["tasks"] += 1
    clock.now = end - timedelta(minutes=1)
    queue.claim_tasks(
        session, agent_ids["analyst"], types=[TaskType.ANALYSIS], lease_s=3600, now=end
    )
