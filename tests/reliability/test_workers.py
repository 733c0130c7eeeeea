"""Worker chaos: queue workers over HTTP are SIGKILLed at random and restarted while they take
every task; the history shows that the queue's guarantees held.

A real ``swarm-director serve`` (gunicorn, several workers) on a fresh database; worker
processes (``queue_workers.py``) claim with a short lease, heartbeat, "work" for a random short
time (a few tasks for longer than the lease, so only the heartbeats keep them) and complete,
or fail the tasks that always raise. A loop SIGKILLs a random worker, preferring one that holds
a task, and starts a new one in its slot (same agent), at a pace that spreads the kills over
the run. A few workers are frozen (SIGSTOP) in the middle of a slow task until another worker
has taken it over, and then thawed: zombies that come back, while the new holder works, with a
lease that is no longer theirs. Tasks
arrive in waves, so waiting claims are woken too.

At the end, read from the database (the tasks table and the history), never from the workers:

* every normal task is ``completed``, with exactly one ``complete`` row;
* the history of each task is a sequence of leases: a ``claim`` (its attempt one more than
  the previous) starts one, and only a ``complete``, ``retry``, ``fail`` or ``expire`` of the
  same attempt ends it; no claim while a lease is open (no two leases overlap), no end without
  an open lease, nothing after a ``complete`` or ``fail``;
* no completion or failure from a stale lease: the result (or error) a worker sent names the
  attempt of the lease it held, and that is the attempt that was open. (The ``attempt`` of a
  ``complete`` row is the task's own count when it was accepted, so it cannot tell a stale
  lease from a live one by itself.)
* an ``expire`` came no earlier than the lease's first expiry (heartbeats only extend it);
* tasks that always raise end ``failed`` after exactly ``max_attempts`` claims, and each claim
  after a ``retry`` came no earlier than the retry's ``not_before`` (the backoff held);
* the tasks table agrees with the history (status, attempts).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from swarm_director.db import Database, make_engine
from swarm_director.enums import TaskPriority, TaskStatus
from swarm_director.models import HistoryEntry, Task
from swarm_director.store import agents, tasks
from tests.reliability.conftest import Figures, Scale, url_text
from tests.reliability.procs import Server, worker_context
from tests.reliability.queue_workers import RAISE_PREFIX, queue_worker

#: The lease workers claim with; they heartbeat three times per lease.
LEASE_S = 1.5
#: Claims a task that always raises gets; a normal task gets enough to outlive its kills.
RAISE_ATTEMPTS = 3
NORMAL_ATTEMPTS = 20
#: A short backoff (the server's SWARM_QUEUE_BACKOFF_*), so failing tasks end within the run.
BACKOFF_BASE_S = 0.3
BACKOFF_CAP_S = 2.0
#: Share of tasks that work for one to two leases (only the heartbeats keep them).
SLOW_SHARE = 0.03
#: A frozen worker is thawed when its task is taken over, or after this long.
FROZEN_AT_MOST_S = 4 * LEASE_S
#: Tasks arrive in this many waves; the next one when half of what is there has ended.
WAVES = 4
ENDED = (TaskStatus.COMPLETED, TaskStatus.FAILED)


@dataclass(frozen=True)
class Run:
    """The size of one run."""

    workers: int
    server_workers: int
    tasks: int
    raising: int
    kills: int
    freezes: int
    deadline_s: float


QUICK_RUN = Run(
    workers=4, server_workers=2, tasks=200, raising=20, kills=10, freezes=3, deadline_s=150
)
FULL_RUN = Run(
    workers=8, server_workers=3, tasks=2000, raising=100, kills=60, freezes=20, deadline_s=900
)


# --- the check, from the history ---------------------------------------------------------


@dataclass
class Replay:
    """What one task's history says, replayed row by row."""

    claims: int = 0
    completions: int = 0
    expiries: int = 0
    retries: int = 0
    open_attempt: int | None = None
    lease_start: datetime | None = None
    first_expiry: datetime | None = None
    due: datetime | None = None
    final: str | None = None


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def replay_task(
    task_id: int, rows: Iterable[Mapping[str, Any]], lease: timedelta
) -> tuple[Replay, list[str]]:
    """Replay one task's history rows (oldest first: ``action``, ``changes``, ``at``); returns
    the replay and every broken rule, each as a sentence naming the task."""
    state = Replay()
    problems: list[str] = []

    def broken(text: str) -> None:
        problems.append(f"task {task_id}: {text}")

    for row in rows:
        action, changes, at = row["action"], row["changes"], _when(row["at"])
        if state.final is not None and action != "create":
            broken(f"{action} after it was {state.final}")
            continue
        attempt = changes.get("attempt")
        if action == "create":
            continue
        if action == "claim":
            if state.open_attempt is not None:
                broken(f"claim while attempt {state.open_attempt}'s lease was open (overlap)")
            if attempt != [state.claims, state.claims + 1]:
                broken(f"claim's attempt {attempt} after {state.claims} claims")
            expires = _when(changes["lease_expires_at"][1])
            started = expires - lease  # the claim's own clock: its lease is `lease` long
            if state.due is not None and started < state.due:
                broken(f"claimed at {started} before its retry's not_before {state.due}")
            state.claims += 1
            state.open_attempt, state.lease_start, state.first_expiry = (
                state.claims,
                started,
                expires,
            )
            state.due = None
            continue
        if action not in ("complete", "retry", "fail", "expire"):
            broken(f"unexpected action {action!r}")
            continue
        if state.open_attempt is None:
            broken(f"{action} without an open lease")
        elif attempt != [state.open_attempt, state.open_attempt]:
            broken(f"{action} of attempt {attempt} while attempt {state.open_attempt} held it")
        elif (sent := _lease_attempt(action, changes)) not in (None, state.open_attempt):
            broken(
                f"{action} sent with attempt {sent}'s lease while attempt "
                f"{state.open_attempt} held it (stale)"
            )
        if action == "expire" and state.first_expiry is not None and at < state.first_expiry:
            broken(f"expired at {at}, before its lease's first expiry {state.first_expiry}")
        state.open_attempt = None
        after = changes.get("status", [None, None])[1]
        if action == "complete":
            state.completions += 1
            state.final = "completed"
        elif action == "fail" or (action == "expire" and after == TaskStatus.FAILED.value):
            state.final = "failed"
            state.expiries += action == "expire"
        elif action == "retry":
            state.retries += 1
            due = changes.get("not_before", [None, None])[1]
            if due is None:
                broken("retry without a not_before")
            state.due = _when(due) if due is not None else None
        else:
            state.expiries += 1
    return state, problems


def _lease_attempt(action: str, changes: Mapping[str, Any]) -> int | None:
    """The attempt whose lease the worker ended, as it wrote it: ``attempt`` in a completion's
    result, ``attempt N`` in a failure's error (None for an expiry: no worker sent it)."""
    if action == "complete":
        result = changes.get("result", [None, None])[1]
        return result.get("attempt") if isinstance(result, dict) else None
    if action in ("retry", "fail"):
        words = str(changes.get("last_error", [None, ""])[1]).split()
        if "attempt" in words[:-1]:
            return int(words[words.index("attempt") + 1])
    return None


@dataclass
class Verdict:
    """The whole run's check: broken rules and what was counted."""

    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def check_run(engine: Engine, raising: set[int], lease: timedelta) -> Verdict:
    """Every rule of the module docstring, from the tasks table and the history."""
    verdict = Verdict()
    with engine.connect() as conn, conn.begin():
        stored = {
            row.id: row
            for row in conn.execute(
                sa.select(Task.id, Task.status, Task.attempts, Task.max_attempts)
            )
        }
        history: dict[int, list[Mapping[str, Any]]] = {task_id: [] for task_id in stored}
        for row in conn.execute(
            sa.select(
                HistoryEntry.entity_id, HistoryEntry.action, HistoryEntry.changes, HistoryEntry.at
            )
            .where(HistoryEntry.entity == "task")
            .order_by(HistoryEntry.id)
        ):
            history.setdefault(row.entity_id, []).append(row._mapping)
    for task_id, rows in history.items():
        task = stored.get(task_id)
        if task is None:
            verdict.problems.append(f"task {task_id}: history of a task that is not there")
            continue
        state, problems = replay_task(task_id, rows, lease)
        verdict.problems += problems
        verdict.counts.update(
            claims=state.claims,
            expiries=state.expiries,
            retries=state.retries,
            completions=state.completions,
        )
        if state.claims > 1:
            verdict.counts["tasks_claimed_more_than_once"] += 1
        status = task.status.value
        if task_id in raising:
            if status != "failed" or state.final != "failed":
                verdict.problems.append(f"task {task_id} always raises but is {status}")
            if state.claims != task.max_attempts:
                verdict.problems.append(
                    f"task {task_id} failed after {state.claims} claims, not {task.max_attempts}"
                )
        elif status != "completed" or state.completions != 1:
            verdict.problems.append(
                f"task {task_id} is {status} with {state.completions} completions"
            )
        if state.final != status or state.claims != task.attempts:
            verdict.problems.append(
                f"task {task_id}: the table says {status} after {task.attempts} attempts, "
                f"the history {state.final} after {state.claims} claims"
            )
    return verdict


# --- the run ------------------------------------------------------------------------------


def _task(i: int, rng: random.Random, raises: bool) -> dict[str, Any]:
    slow = rng.random() < SLOW_SHARE
    work_s = rng.uniform(LEASE_S, 2 * LEASE_S) if slow else rng.uniform(0.0, 0.04)
    return {
        "type": "analysis",
        "title": f"{RAISE_PREFIX if raises else 'chaos'} {i}",
        "description": f"work_s={work_s:.3f}",
        "priority": rng.choice(list(TaskPriority)),
        "max_attempts": RAISE_ATTEMPTS if raises else NORMAL_ATTEMPTS,
    }


def _last_line(path: Path) -> str:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    lines = text.splitlines()
    return lines[-1] if lines else ""


def _signal(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


@dataclass
class Slot:
    """One worker place: its agent and its current process."""

    agent_id: int
    journal: Path
    process: Any = None
    starts: int = 0
    thaw_at: float | None = None
    """When a frozen (SIGSTOPped) worker gets its SIGCONT at the latest."""
    frozen_on: int | None = None
    """The task it held when it was frozen (not killed until it has tried to end it)."""
    frozen_attempt: int = 0

    def ready(self) -> bool:
        """Its current process runs, is not frozen, and has made its client (each start
        writes ``ready``)."""
        if self.process is None or not self.process.is_alive() or self.thaw_at is not None:
            return False
        return self.journal.exists() and self.journal.read_text().count("ready\n") >= self.starts

    def thawed_zombie(self) -> bool:
        """Thawed, and not yet through ending the task it held when frozen."""
        return self.frozen_on is not None and self.holding() == self.frozen_on

    def holding(self) -> int | None:
        """The task its journal says it claimed last, while it has not ended it."""
        return self.claim()[0]

    def claim(self) -> tuple[int | None, int]:
        """The task and attempt its journal says it claimed last, while it has not ended it."""
        last = _last_line(self.journal).split()
        return (int(last[1]), int(last[2])) if last and last[0] == "c" else (None, 0)


@dataclass
class Chaos:
    """The tasks, the workers and what was done to them."""

    run: Run
    db: Database
    base_url: str
    rng: random.Random
    waves: list[list[dict[str, Any]]]
    created: list[int] = field(default_factory=list)
    raising: set[int] = field(default_factory=set)
    slow: set[int] = field(default_factory=set)
    slots: list[Slot] = field(default_factory=list)
    kills: int = 0
    mid_task_kills: int = 0
    freezes: int = 0
    takeovers: int = 0

    def add_wave(self) -> None:
        with self.db.transaction() as session:
            for spec in self.waves.pop(0):
                task_id = tasks.create_task(session, spec).id
                self.created.append(task_id)
                if spec["title"].startswith(RAISE_PREFIX):
                    self.raising.add(task_id)
                if float(spec["description"].removeprefix("work_s=")) >= LEASE_S:
                    self.slow.add(task_id)

    def ended(self) -> int:
        with self.db.read() as session:
            count = session.scalar(
                sa.select(sa.func.count()).select_from(Task).where(Task.status.in_(ENDED))
            )
        return int(count or 0)

    def start(self, slot: Slot) -> None:
        slot.starts += 1
        slot.frozen_on = None
        slot.process = worker_context().Process(
            target=queue_worker, args=(self.base_url, slot.agent_id, LEASE_S, str(slot.journal))
        )
        slot.process.start()

    def kill_one(self) -> bool:
        """SIGKILL a random ready worker (one holding a task, if any) and start another in its
        slot; False when no worker is ready yet."""
        ready = [slot for slot in self.slots if slot.ready() and not slot.thawed_zombie()]
        if not ready:
            return False
        holding = [slot for slot in ready if slot.holding() is not None]
        victim = self.rng.choice(holding or ready)
        self.mid_task_kills += bool(holding)
        _signal(victim.process.pid, signal.SIGKILL)
        victim.process.join(timeout=30)
        assert victim.process.exitcode == -signal.SIGKILL, victim.process.exitcode
        self.kills += 1
        self.start(victim)
        return True

    def freeze_one(self) -> None:
        """SIGSTOP a worker in the middle of a slow task for longer than its lease: when it
        thaws it is a zombie whose heartbeat and completion must be refused."""
        working = [
            slot
            for slot in self.slots
            if slot.ready() and not slot.thawed_zombie() and slot.holding() in self.slow
        ]
        if working:
            victim = self.rng.choice(working)
            _signal(victim.process.pid, signal.SIGSTOP)
            victim.frozen_on, victim.frozen_attempt = victim.claim()
            victim.thaw_at = time.monotonic() + FROZEN_AT_MOST_S
            self.freezes += 1

    def thaw_due(self) -> bool:
        """SIGCONT each frozen worker once another worker took its task over (it comes back
        while the new holder works: its heartbeat and its ending must be refused), or when it
        was frozen for long enough; True while any stays frozen."""
        frozen = False
        for slot in self.slots:
            if slot.thaw_at is None:
                continue
            taken_over = self.attempts(slot.frozen_on) > slot.frozen_attempt
            if taken_over or time.monotonic() >= slot.thaw_at:
                _signal(slot.process.pid, signal.SIGCONT)
                slot.thaw_at = None
                self.takeovers += taken_over
            frozen |= slot.thaw_at is not None
        return frozen

    def attempts(self, task_id: int | None) -> int:
        with self.db.read() as session:
            found = session.scalar(sa.select(Task.attempts).where(Task.id == task_id))
        return int(found or 0)

    def drive(self) -> None:
        """Until every task ended and every kill was made (bounded by the run's deadline):
        new waves of tasks, kills spread over the run, freezes while slow tasks are held."""
        run = self.run
        deadline = time.monotonic() + run.deadline_s
        self.add_wave()
        for slot in self.slots:
            self.start(slot)
        done, frozen = 0, False
        while done < run.tasks or self.kills < run.kills or frozen:
            assert time.monotonic() < deadline, (
                f"{done} of {run.tasks} tasks ended, {self.kills} kills in {run.deadline_s} s"
            )
            time.sleep(0.05)
            done = self.ended()
            frozen = self.thaw_due()
            if self.waves and done >= len(self.created) // 2:
                self.add_wave()
            if self.freezes < run.freezes:
                self.freeze_one()
            # Kill number k once k/(kills+1) of the tasks ended: the kills spread over the run.
            due = run.tasks * (self.kills + 1) / (run.kills + 1) * 0.95
            if self.kills < run.kills and done >= due:
                self.kill_one()

    def stop(self) -> None:
        for slot in self.slots:
            if slot.process is not None:
                _signal(slot.process.pid, signal.SIGKILL)
                slot.process.join(timeout=30)

    def journals(self) -> list[str]:
        return [line for slot in self.slots for line in slot.journal.read_text().splitlines()]


def test_workers_survive_sigkill_and_the_history_shows_every_guarantee(
    migrated_url: URL, dialect: str, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    run = FULL_RUN if scale.full else QUICK_RUN
    rng = random.Random(20261220)
    db = Database(make_engine(migrated_url))
    with db.transaction() as session:
        agent_ids = [
            agents.create_agent(session, {"name": f"chaos-{i}", "agent_type": "worker"}).id
            for i in range(run.workers)
        ]
    every = run.tasks // run.raising
    specs = [_task(i, rng, raises=i % every == 0) for i in range(run.tasks)]
    env = {
        "SWARM_QUEUE_BACKOFF_BASE_S": str(BACKOFF_BASE_S),
        "SWARM_QUEUE_BACKOFF_CAP_S": str(BACKOFF_CAP_S),
    }
    server = Server(
        url_text(migrated_url), tmp_path / "server.log", workers=run.server_workers, env=env
    ).start()
    chaos = Chaos(
        run=run,
        db=db,
        base_url=f"http://127.0.0.1:{server.port}",
        rng=rng,
        waves=[specs[i::WAVES] for i in range(WAVES)],
        slots=[Slot(agent, tmp_path / f"worker-{i}.journal") for i, agent in enumerate(agent_ids)],
    )
    started = time.monotonic()
    try:
        chaos.drive()
        wall_s = time.monotonic() - started
    finally:
        chaos.stop()
        server.stop()
        db.dispose()  # the check below reads through a new connection of the same engine

    log = server.output()
    assert "Traceback" not in log, log[-3000:]
    journals = chaos.journals()
    errors = [line for line in journals if line.startswith("error")]
    assert not errors, errors[:5]
    lost = sum(1 for line in journals if line.startswith("lost"))
    verdict = check_run(db.engine, chaos.raising, timedelta(seconds=LEASE_S))
    db.engine.dispose()
    assert not verdict.problems, verdict.problems[:20]
    assert len(chaos.created) == run.tasks and len(chaos.raising) == run.raising
    assert verdict.counts["completions"] == run.tasks - run.raising
    # The test tested something: kills cost leases, and thawed zombies were refused.
    assert verdict.counts["expiries"] >= 1 and chaos.takeovers >= 1 and lost >= 1
    figures.record(
        f"queue_workers_{dialect}",
        {
            "tasks": run.tasks,
            "always_raising": run.raising,
            "workers": run.workers,
            "server_workers": run.server_workers,
            "kills": chaos.kills,
            "kills_of_a_worker_holding_a_task": chaos.mid_task_kills,
            "freezes_past_the_lease": chaos.freezes,
            "zombies_thawed_while_another_held_the_task": chaos.takeovers,
            "zombie_results_refused": lost,
            **dict(sorted(verdict.counts.items())),
            "seconds": round(wall_s, 1),
        },
    )


# --- the check itself can fail ----------------------------------------------------------


T0 = datetime(2026, 12, 20, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=LEASE_S)


def _claim(n: int, at: datetime) -> dict[str, Any]:
    changes = {"attempt": [n - 1, n], "lease_expires_at": [None, (at + LEASE).isoformat()]}
    return {"action": "claim", "changes": changes, "at": at}


def _end(action: str, n: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"action": action, "changes": {"attempt": [n, n], **extra}, "at": at}


def _s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([_claim(1, _s(0)), _claim(2, _s(1))], "overlap"),
        ([_claim(1, _s(0)), _end("complete", 1, _s(1)), _end("complete", 1, _s(2))], "after"),
        (
            [
                _claim(1, _s(0)),
                _end("expire", 1, _s(2)),
                _claim(2, _s(2)),
                _end("complete", 1, _s(3)),
            ],
            "of attempt [1, 1] while attempt 2",
        ),
        ([_claim(1, _s(0)), _end("expire", 1, _s(1))], "before its lease's first expiry"),
        (
            [
                _claim(1, _s(0)),
                _end("retry", 1, _s(1), not_before=[None, _s(3).isoformat()]),
                _claim(2, _s(2)),
            ],
            "before its retry's not_before",
        ),
        ([_end("complete", 0, _s(0))], "without an open lease"),
        ([_claim(1, _s(0)), _claim(3, _s(5))], "claim's attempt [2, 3] after 1 claims"),
        (
            [
                _claim(1, _s(0)),
                _end("expire", 1, _s(2)),
                _claim(2, _s(2)),
                _end("complete", 2, _s(3), result=[None, {"agent_id": 1, "attempt": 1}]),
            ],
            "sent with attempt 1's lease while attempt 2 held it",
        ),
        (
            [
                _claim(1, _s(0)),
                _end("expire", 1, _s(2)),
                _claim(2, _s(2)),
                _end("retry", 2, _s(3), last_error=[None, "RuntimeError: 7 attempt 1 raises"]),
            ],
            "sent with attempt 1's lease while attempt 2 held it",
        ),
    ],
    ids=[
        "overlap",
        "two-completions",
        "stale-attempt",
        "early-expiry",
        "early-retry",
        "no-lease",
        "skip",
        "stale-result",
        "stale-error",
    ],
)
def test_the_history_check_finds_each_broken_rule(rows: list[dict[str, Any]], problem: str) -> None:
    _, problems = replay_task(7, rows, LEASE)
    assert any(problem in text for text in problems), problems


def test_the_history_check_passes_a_task_that_was_taken_over_and_completed() -> None:
    rows = [
        {"action": "create", "changes": {}, "at": _s(0)},
        _claim(1, _s(0)),
        _end("expire", 1, _s(2), status=["in_progress", "pending"]),
        _claim(2, _s(2)),
        _end(
            "retry",
            2,
            _s(3),
            not_before=[None, _s(4).isoformat()],
            last_error=[None, "RuntimeError: 7 attempt 2 raises"],
        ),
        _claim(3, _s(4)),
        _end(
            "complete",
            3,
            _s(5),
            status=["in_progress", "completed"],
            result=[None, {"agent_id": 1, "attempt": 3}],
        ),
    ]
    state, problems = replay_task(7, rows, LEASE)
    assert problems == []
    assert (state.claims, state.completions, state.final) == (3, 1, "completed")
