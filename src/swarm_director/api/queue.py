"""The work queue over HTTP: ``POST /api/tasks/claim``, and heartbeat, complete and fail of a
claimed task with its lease token (see :mod:`swarm_director.store.queue`)."""

from __future__ import annotations

from flask import Flask, Response, current_app

from swarm_director.api.common import (
    PageQuery,
    TaskPath,
    blueprint,
    json_response,
    page_response,
)
from swarm_director.schemas import TaskOut, TaskPage
from swarm_director.schemas.queue import (
    ClaimOut,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    FailRequest,
    HeartbeatOut,
    HeartbeatRequest,
    RequeueRequest,
)
from swarm_director.store import queue
from swarm_director.store.queue_wait import ReadySignal, wait_for
from swarm_director.web.context import connection, database, state
from swarm_director.web.errors import ErrorResponse

bp = blueprint("queue", "The work queue: claim tasks under a lease, then complete or fail them.")
_SIGNAL = "swarm_director.ready_signal"


def _signal() -> ReadySignal:
    found: ReadySignal = current_app.extensions[_SIGNAL]
    return found


def _backoff() -> queue.Backoff:
    settings = state().settings
    return queue.Backoff(settings.queue_backoff_base_s, settings.queue_backoff_cap_s)


@bp.post("/tasks/claim", responses={200: ClaimResponse})
def claim_tasks(body: ClaimRequest) -> Response:
    """Claim up to `limit` ready tasks for `agent_id`: the highest priority first, then the
    oldest; pending and due, or in progress with an expired lease. Each comes with a lease
    token valid for `lease_s` seconds. With `wait_s` the call answers as soon as a task is
    ready, else with no claims when the wait ends (`SWARM_CLAIM_MAX_WAIT_S` caps the wait)."""
    db = database()

    def attempt() -> list[queue.Claim] | None:
        with db.writes() as unit:
            claims = queue.claim_tasks(
                unit, body.agent_id, types=body.types, lease_s=body.lease_s, limit=body.limit
            )
        return claims or None

    def ready() -> bool:
        with db.statement_reads() as reads:
            return queue.has_ready_task(reads, body.agent_id, body.types)

    wait_s = min(body.wait_s, state().settings.claim_max_wait_s)
    claims = wait_for(_signal(), attempt, ready, wait_s) or []
    out = [
        ClaimOut(
            task=TaskOut.model_validate(claim.task),
            lease_token=claim.lease_token,
            lease_expires_at=claim.lease_expires_at,
        )
        for claim in claims
    ]
    return json_response(ClaimResponse(claims=out))


@bp.post("/tasks/<int:task_id>/heartbeat", responses={200: HeartbeatOut, 409: ErrorResponse})
def heartbeat(path: TaskPath, body: HeartbeatRequest) -> Response:
    """Extend the lease of a claimed task to `lease_s` seconds from now. 409 when the token
    no longer holds the lease (it expired, or the task was taken over or finished)."""
    with database().writes() as unit:
        expires = queue.heartbeat(unit, path.task_id, body.lease_token, lease_s=body.lease_s)
    return json_response(HeartbeatOut(task_id=path.task_id, lease_expires_at=expires))


@bp.post("/tasks/<int:task_id>/complete", responses={200: TaskOut, 409: ErrorResponse})
def complete_task(path: TaskPath, body: CompleteRequest) -> Response:
    """Complete a claimed task, storing `result`. 409, and nothing changes, when the token no
    longer holds the lease: a task is completed at most once."""
    with database().writes() as unit:
        task = queue.complete_task(unit, path.task_id, body.lease_token, result=body.result)
    return json_response(TaskOut.model_validate(task))


@bp.post("/tasks/<int:task_id>/fail", responses={200: TaskOut, 409: ErrorResponse})
def fail_task(path: TaskPath, body: FailRequest) -> Response:
    """Fail the attempt of a claimed task: retried after an exponential backoff with jitter
    while attempts remain (and `retry`), else failed for good. 409 as for complete."""
    with database().writes() as unit:
        task = queue.fail_task(
            unit, path.task_id, body.lease_token, body.error, retry=body.retry, backoff=_backoff()
        )
    return json_response(TaskOut.model_validate(task))


@bp.post("/tasks/<int:task_id>/requeue", responses={200: TaskOut, 409: ErrorResponse})
def requeue_task(path: TaskPath, body: RequeueRequest) -> Response:
    """Put a task whose lease expired back to pending now (an operator's hand, instead of
    waiting for the next claim), with one more attempt when its attempts are used up. The
    body is `{}`. 409, and nothing changes, when the task is not in progress or its lease is
    still live."""
    del body  # nothing in it: validated as `{}`
    with database().writes() as unit:
        task = queue.requeue_task(unit, path.task_id)
    return json_response(TaskOut.model_validate(task))


@bp.get("/tasks/expired-leases", responses={200: TaskPage})
def list_expired_leases(query: PageQuery) -> Response:
    """Tasks in progress whose lease expired (their agent stopped): the next claim takes them
    over. Oldest expiry first, at most 1,000 (no further pages)."""
    return page_response(TaskPage, queue.list_expired_leases(connection())[: query.limit], None)


@bp.get("/tasks/dead", responses={200: TaskPage})
def list_dead_tasks(query: PageQuery) -> Response:
    """Failed tasks that used up their attempts, newest first, at most 1,000 (no further
    pages)."""
    return page_response(TaskPage, queue.list_dead_tasks(connection())[: query.limit], None)


def init_app(app: Flask) -> None:
    """Give ``app`` the signal that wakes claims waiting for work."""
    # Behind a transaction pooler LISTEN loses its notifications: the signal polls instead.
    signal = ReadySignal(
        state(app).database.engine, listen=not state(app).settings.pg_transaction_pooler
    )
    app.extensions[_SIGNAL] = signal
    state(app).database.on_dispose(signal.close)
