"""The worker helper: claim a task, keep its lease alive while the caller works, and complete
or fail it when the block ends.

::

    with client.work(agent_id, types=["analysis"], wait_s=30) as job:
        if job is not None:
            job.result = {"rows": analyse(job.task)}

Leaving the block normally completes the task with ``job.result``; an exception fails the
attempt with the exception's message (retried by the server while attempts remain) and is
logged, not raised, so a worker loop goes on with the next task. ``KeyboardInterrupt`` and
``SystemExit`` are not caught: the task's lease then simply expires and another worker takes
it over. A lease lost meanwhile (the heartbeat or the completion answered 409) ends as
``job.outcome == "lost"``; the server kept whatever the new holder does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from swarm_director.client.errors import ClientError, ConflictError
from swarm_director.enums import TaskType
from swarm_director.schemas import TaskOut
from swarm_director.schemas.queue import ClaimOut

if TYPE_CHECKING:
    from swarm_director.client.async_ import AsyncClient
    from swarm_director.client.sync import Client

_log = logging.getLogger(__name__)
#: Heartbeats are sent this many times per lease length.
BEATS_PER_LEASE = 3
Outcome = Literal["completed", "failed", "lost"]


class WorkOptions(TypedDict, total=False):
    """How :func:`work` claims: ``types`` (any when empty), ``lease_s`` (default 60),
    ``wait_s`` (how long a claim may wait for a ready task, default 30) and ``retry``
    (whether a failure may be retried while attempts remain, default true)."""

    types: Sequence[TaskType | str]
    lease_s: float
    wait_s: float
    retry: bool


@dataclass(frozen=True)
class _Work:
    """:class:`WorkOptions` with their defaults."""

    types: Sequence[TaskType | str] = ()
    lease_s: float = 60.0
    wait_s: float = 30.0
    retry: bool = True


@dataclass
class Job:
    """A claimed task while a worker holds it."""

    task: TaskOut
    lease_token: str
    result: dict[str, Any] | None = None
    """Stored as the task's result when the block ends normally."""
    outcome: Outcome | None = None
    """Set when the block has ended."""
    error: BaseException | None = None
    """The exception that failed the attempt, if one did."""
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set when a heartbeat found the lease taken: stop work that can be stopped."""

    @classmethod
    def of(cls, claim: ClaimOut) -> Job:
        return cls(claim.task, claim.lease_token)

    # What both helpers decide, whichever way they send: only the sending differs.

    def heartbeat_failed(self, error: ClientError) -> bool:
        """Note a failed heartbeat; True when the lease is lost (stop beating)."""
        if isinstance(error, ConflictError):
            self.lost.set()
            return True
        # a blip: the next beat may get through before expiry
        _log.warning("task %s: heartbeat failed", self.task.id, exc_info=True)
        return False

    def failed(self, error: BaseException) -> str:
        """Note that the block raised ``error``; the reason to send with the failure."""
        self.error, self.outcome = error, "failed"
        text = str(error).strip().splitlines()
        first = text[0] if text else ""
        reason = f"{type(error).__name__}: {first}"[:10_000] if first else type(error).__name__
        _log.warning("task %s failed: %s", self.task.id, reason, exc_info=True)
        return reason

    def lease_lost(self) -> None:
        """The completion or failure was answered 409: another holder has the task."""
        self.outcome = "lost"
        _log.warning("task %s: the lease was lost; the result was not stored", self.task.id)


def _end(job: Job, finish: Any) -> None:
    try:
        finish()
    except ConflictError:
        job.lease_lost()


@contextmanager
def work(client: Client, agent_id: int, **options: Unpack[WorkOptions]) -> Iterator[Job | None]:
    """Claim one task for ``agent_id`` (waiting up to ``wait_s``); yields the :class:`Job`,
    or None when no task became ready. See the module docstring for what the block's end
    does."""
    o = _Work(**options)
    lease_s = o.lease_s
    claims = client.claim_tasks(agent_id, types=o.types, lease_s=lease_s, wait_s=o.wait_s).claims
    if not claims:
        yield None
        return
    job = Job.of(claims[0])
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / BEATS_PER_LEASE):
            try:
                client.heartbeat(job.task.id, job.lease_token, lease_s=lease_s)
            except ClientError as error:
                if job.heartbeat_failed(error):
                    return

    beater = threading.Thread(target=beat, name=f"heartbeat-{job.task.id}", daemon=True)
    beater.start()
    try:
        yield job
    except Exception as error:
        stop.set()
        reason = job.failed(error)
        _end(job, lambda: client.fail_task(job.task.id, job.lease_token, reason, retry=o.retry))
        return
    finally:
        stop.set()
        beater.join()
    job.outcome = "completed"
    _end(job, lambda: client.complete_task(job.task.id, job.lease_token, job.result))


@asynccontextmanager
async def awork(
    client: AsyncClient, agent_id: int, **options: Unpack[WorkOptions]
) -> AsyncIterator[Job | None]:
    """:func:`work` for the asyncio client: the heartbeat is a task of the running loop."""
    o = _Work(**options)
    lease_s = o.lease_s
    response = await client.claim_tasks(agent_id, types=o.types, lease_s=lease_s, wait_s=o.wait_s)
    if not response.claims:
        yield None
        return
    job = Job.of(response.claims[0])

    async def beat() -> None:
        while True:
            await asyncio.sleep(lease_s / BEATS_PER_LEASE)
            try:
                await client.heartbeat(job.task.id, job.lease_token, lease_s=lease_s)
            except ClientError as error:
                if job.heartbeat_failed(error):
                    return

    beater = asyncio.create_task(beat())
    try:
        yield job
    except Exception as error:
        beater.cancel()
        reason = job.failed(error)
        try:
            await client.fail_task(job.task.id, job.lease_token, reason, retry=o.retry)
        except ConflictError:
            job.lease_lost()
        return
    finally:
        beater.cancel()
    job.outcome = "completed"
    try:
        await client.complete_task(job.task.id, job.lease_token, job.result)
    except ConflictError:
        job.lease_lost()
