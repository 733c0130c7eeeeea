"""The queue worker of the worker chaos test (``test_workers.py``), run in its own process.

It takes tasks over HTTP with :meth:`Client.work <swarm_director.client.Client.work>` (claim,
heartbeats in the background, complete or fail when the block ends) until it is killed. A
task says what to do in its description: ``work_s=<seconds>`` to sleep, and a task titled
``raise ...`` raises, so that its worker fails it. Both the result and the error name the
attempt the worker's lease was for, so the history shows which lease each ending came from.
The journal (one line per step, not fsynced) is only for the test's figures and for choosing
whom to kill; the test's verdict comes from the database, never from what workers say.
"""

from __future__ import annotations

import logging
import os
import time

from swarm_director.client import Client, ClientError

#: A worker stops on its own after this long (the test normally kills it first).
LIFETIME_S = 1800.0
#: How long one claim waits for a task to become ready.
CLAIM_WAIT_S = 1.0
RAISE_PREFIX = "raise"


def _note(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


def work_seconds(description: str | None) -> float:
    """The sleep a task asks for (``work_s=0.02``), 0 when it asks for none."""
    for part in (description or "").split():
        if part.startswith("work_s="):
            return float(part.removeprefix("work_s="))
    return 0.0


def queue_worker(base_url: str, agent_id: int, lease_s: float, journal: str) -> None:
    """Claim, work and complete (or fail) tasks as agent ``agent_id`` until killed. Journal
    lines: ``ready``, ``c <task> <attempt>`` on a claim, ``<outcome> <task>`` when the block
    ended (completed, failed, lost), ``error <message>`` for a call that failed otherwise."""
    # The helper logs each failed attempt with its traceback; the raising tasks make plenty.
    logging.getLogger("swarm_director.client.worker").setLevel(logging.ERROR)
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    deadline = time.monotonic() + LIFETIME_S
    with Client(base_url, timeout=10) as client:
        _note(fd, "ready")
        while time.monotonic() < deadline:
            try:
                with client.work(agent_id, lease_s=lease_s, wait_s=CLAIM_WAIT_S) as job:
                    if job is None:
                        continue
                    _note(fd, f"c {job.task.id} {job.task.attempts}")
                    time.sleep(work_seconds(job.task.description))
                    if job.task.title.startswith(RAISE_PREFIX):
                        raise RuntimeError(f"{job.task.id} attempt {job.task.attempts} raises")
                    job.result = {"agent_id": agent_id, "attempt": job.task.attempts}
                _note(fd, f"{job.outcome} {job.task.id}")
            except ClientError as error:  # a 5xx, a timeout: the test counts them
                _note(fd, f"error {type(error).__name__}: {str(error).splitlines()[:1]}")
                time.sleep(0.1)
