"""A known swarm for the reports' tests: tasks driven through the real work queue at chosen
times (retries, lease expiries, due times, deleted tasks), logs, drafts and emails, and next
to them, what happened, noted in plain Python so that the tests can count every figure
themselves."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.models import Draft, EmailMessage, Task
from swarm_director.models.recording import recorded_at
from swarm_director.store import agents, drafts, emails, logs, queue, tasks

#: A Sunday night in Berlin when daylight saving time ends (02:00 CEST → 01:00 UTC) and the
#: day after: a 25-hour local day in the middle of the swarm.
START = datetime(2026, 10, 24, 18, 0, tzinfo=UTC)
TYPES = ("analysis", "email_draft", "document_review", "communication")
PRIORITIES = ("low", "medium", "high", "critical")
ERRORS = (
    "timeout after 30 s calling model gpt-4 for job 1234",
    "timeout after 45 s calling model gpt-4 for job 99",
    "rate limited by upstream 4f3a9c2e1b7d (retry in 12.5 s)",
    "quota exceeded",
)


class Clock:
    """What the history records as now."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Attempt:
    task_id: int
    type: str
    agent_id: int
    number: int
    ready: datetime
    claimed: datetime
    ended: datetime | None = None
    outcome: str | None = None  # complete, fail, retry, expire


@dataclass
class Swarm:
    """What the builder did, for the tests to count."""

    agents: dict[int, str] = field(default_factory=dict)
    #: task id → (type, priority, assigned agent at the end, created_at)
    tasks: dict[int, tuple[str, str, int | None, datetime]] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    completed: list[tuple[int, datetime]] = field(default_factory=list)
    failed: list[tuple[int, datetime]] = field(default_factory=list)
    #: (message, at, task id) of each failed step
    errors: list[tuple[str, datetime, int]] = field(default_factory=list)
    logs: list[tuple[str, datetime, str]] = field(default_factory=list)
    sent: list[datetime] = field(default_factory=list)
    email_failures: list[datetime] = field(default_factory=list)
    approvals: list[tuple[int, datetime]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)


def _set(session: Any, model: Any, row_id: int, **values: Any) -> None:
    table = model.__table__
    session.execute(sa.update(table).where(table.c.id == row_id).values(**values))


def build(db: Database, seed: int = 21, n_tasks: int = 60) -> Swarm:
    """A swarm over about 40 hours from :data:`START`, with a quiet gap (empty buckets)."""
    rng = random.Random(seed)
    clock = Clock()
    swarm = Swarm()
    with recorded_at(clock), db.transaction() as session:
        for name in ("alpha", "beta", "gamma"):
            agent = agents.create_agent(session, {"name": name, "agent_type": "worker"})
            swarm.agents[agent.id] = name
        agent_ids = list(swarm.agents)
        t = START
        for i in range(n_tasks):
            # A quiet stretch of five hours after the twentieth task: empty hour buckets.
            t += timedelta(minutes=rng.randint(5, 55), seconds=rng.randint(0, 59))
            if i == 20:
                t += timedelta(hours=5)
            _one_task(session, rng, clock, swarm, agent_ids, t, i)
        # One task created and never claimable (due far later): counted as created only.
        clock.now = t + timedelta(minutes=1)
        task = tasks.create_task(
            session,
            {
                "type": "analysis",
                "title": "scheduled later",
                "not_before": t + timedelta(days=365),
            },
        )
        _set(session, Task, task.id, created_at=clock.now)
        swarm.tasks[task.id] = ("analysis", "medium", None, clock.now)
    with db.transaction() as session:
        _logs_drafts_emails(session, rng, clock, swarm)
    return swarm


def _one_task(
    session: Any,
    rng: random.Random,
    clock: Clock,
    swarm: Swarm,
    agent_ids: list[int],
    t: datetime,
    i: int,
) -> None:
    kind = TYPES[i % len(TYPES)]
    priority = rng.choice(PRIORITIES)
    max_attempts = rng.choice((1, 2, 3))
    clock.now = t
    due = t + timedelta(seconds=rng.randint(10, 90)) if i % 5 == 0 else None
    task = tasks.create_task(
        session,
        {
            "type": kind,
            "title": f"task {i}",
            "priority": priority,
            "max_attempts": max_attempts,
            "not_before": due,
        },
    )
    _set(session, Task, task.id, created_at=t)
    ready = max(t, due) if due else t
    agent: int | None = None
    while True:
        agent = rng.choice(agent_ids)
        clock.now = ready + timedelta(seconds=rng.randint(1, 600), milliseconds=rng.randint(0, 999))
        lease_s = 30.0
        (claim,) = queue.claim_tasks(session, agent, types=[kind], lease_s=lease_s, now=clock.now)
        assert claim.task.id == task.id
        attempt = Attempt(task.id, kind, agent, claim.task.attempts, ready, clock.now)
        swarm.attempts.append(attempt)
        roll = rng.random()
        if i == 59:  # the newest task is still running
            break
        if roll < 0.15:  # the agent stops: the lease expires, the next claim finds it
            clock.now = claim.lease_expires_at + timedelta(seconds=rng.randint(1, 30))
            assert queue.expire_leases(session, clock.now) == 1
            attempt.ended, attempt.outcome = clock.now, "expire"
            dead = claim.task.attempts >= max_attempts
            swarm.errors.append(
                (
                    f"lease expired (attempt {claim.task.attempts} of {max_attempts})",
                    clock.now,
                    task.id,
                )
            )
            if dead:
                swarm.failed.append((task.id, clock.now))
                agent = None
                break
            ready = clock.now
            agent = None
            continue
        clock.now += timedelta(seconds=rng.randint(1, 25), milliseconds=rng.randint(0, 999))
        attempt.ended = clock.now
        if roll < 0.55:
            queue.complete_task(session, task.id, claim.lease_token, now=clock.now)
            attempt.outcome = "complete"
            swarm.completed.append((task.id, clock.now))
            break
        error = rng.choice(ERRORS)
        # No backoff: the retry is ready at once (a due time is tested through not_before).
        backoff = queue.Backoff(base_s=0.0, cap_s=0.0)
        row = queue.fail_task(
            session, task.id, claim.lease_token, error, backoff=backoff, now=clock.now
        )
        swarm.errors.append((error, clock.now, task.id))
        if row.status.value == "failed":
            attempt.outcome = "fail"
            swarm.failed.append((task.id, clock.now))
            break
        attempt.outcome = "retry"
        ready = max(clock.now, row.not_before)
        agent = None
    final = session.get(Task, task.id)
    session.refresh(final)
    swarm.tasks[task.id] = (kind, priority, final.assigned_agent_id, t)
    if i == 7:  # a deleted task is not counted: its row is gone (not the newest: SQLite
        # would give its id to the next task)
        oldest = min(swarm.tasks)
        tasks.delete_task(session, oldest)
        swarm.deleted.add(oldest)


def _logs_drafts_emails(session: Any, rng: random.Random, clock: Clock, swarm: Swarm) -> None:
    live = [task_id for task_id in swarm.tasks if task_id not in swarm.deleted]
    levels = ("debug", "info", "info", "warning", "error")
    batch = []
    for _ in range(300):
        at = START + timedelta(seconds=rng.randint(0, 44 * 3600))
        level = rng.choice(levels)
        message = rng.choice(ERRORS) if level == "error" else f"step {rng.randint(1, 9)} done"
        batch.append((rng.choice(live), level, at, message))
    for task_id, level, at, message in batch:
        logs.add_log(
            session,
            task_id,
            {"agent_type": "worker", "message": message, "log_level": level, "timestamp": at},
        )
        swarm.logs.append((level, at, message))
    for task_id in live[:12]:
        versions = rng.randint(1, 4)
        draft = None
        for _ in range(versions):
            draft = drafts.create_draft(session, task_id, {"content": "text"})
        assert draft is not None
        when = START + timedelta(hours=rng.randint(0, 40), minutes=rng.randint(0, 59))
        if rng.random() < 0.8:
            drafts.review_draft(session, draft.id, {"status": "approved"})
            session.flush()
            _set(session, Draft, draft.id, updated_at=when)
            swarm.approvals.append((versions, when))
    for task_id in live[12:30]:
        email = emails.create_email(
            session,
            task_id,
            {"recipient": "ops@example.com", "subject": "s", "body": "b"},
        )
        clock.now = START + timedelta(hours=rng.randint(0, 40), minutes=rng.randint(0, 59))
        with recorded_at(clock):
            emails.set_email_status(session, email.id, "queued")
            if rng.random() < 0.3:
                emails.set_email_status(session, email.id, "failed", "mailbox full")
                session.flush()
                swarm.email_failures.append(clock.now)
                continue
            emails.set_email_status(session, email.id, "sent")
            session.flush()
        _set(session, EmailMessage, email.id, sent_at=clock.now)
        swarm.sent.append(clock.now)
