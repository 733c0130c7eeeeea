"""Request and response bodies of the work queue (claim, heartbeat, complete, fail)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from swarm_director.enums import TaskType
from swarm_director.schemas.common import (
    InputModel,
    JSONObject,
    LongText,
    NoNul,
    OutputModel,
    PositiveId,
)
from swarm_director.schemas.tasks import TaskOut

#: Longest lease a claim or heartbeat may ask for (one day).
MAX_LEASE_S = 86400.0
#: Longest a claim may wait for a task to become ready.
MAX_WAIT_S = 60.0

# Strict numbers: lax mode would take true as 1 and "60" as 60.0.
LeaseSeconds = Annotated[
    float,
    Field(gt=0, le=MAX_LEASE_S, strict=True, description="Lease length in seconds (default 60)."),
]
LeaseToken = Annotated[
    str, StringConstraints(min_length=1, max_length=64), NoNul, Field(description="From the claim.")
]


class ClaimRequest(InputModel):
    """Claim ready tasks for an agent."""

    agent_id: PositiveId
    types: list[TaskType] = Field(
        default_factory=list, max_length=10, description="Task types taken; empty: any."
    )
    lease_s: LeaseSeconds = 60.0
    limit: int = Field(default=1, ge=1, le=100, strict=True, description="How many tasks at most.")
    wait_s: float = Field(
        default=0.0,
        ge=0,
        le=MAX_WAIT_S,
        strict=True,
        description="Wait up to this long for a task to become ready (0: answer at once).",
    )


class ClaimOut(OutputModel):
    """A claimed task and its lease: send `lease_token` with heartbeat, complete and fail."""

    task: TaskOut
    lease_token: str
    lease_expires_at: AwareDatetime


class ClaimResponse(OutputModel):
    """The tasks claimed, in claim order (empty: none was ready)."""

    claims: list[ClaimOut]


class HeartbeatRequest(InputModel):
    lease_token: LeaseToken
    lease_s: LeaseSeconds = 60.0


class HeartbeatOut(OutputModel):
    task_id: int
    lease_expires_at: datetime


class CompleteRequest(InputModel):
    lease_token: LeaseToken
    result: JSONObject | None = Field(default=None, description="Stored as the task's result.")


class RequeueRequest(InputModel):
    """The body of a requeue: an empty object (`{}`); the task and its expired lease say
    everything."""


class FailRequest(InputModel):
    lease_token: LeaseToken
    error: LongText = Field(description="Why the attempt failed (kept as `last_error`).")
    retry: bool = Field(
        default=True,
        strict=True,
        description="Retry after a backoff while attempts remain; false: failed for good.",
    )
