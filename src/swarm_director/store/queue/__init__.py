"""The work queue: agents claim ready tasks under a lease, keep it alive, and complete or fail
them with it.

A claim takes the highest-priority, oldest ready task (pending and due; a task whose lease
expired is first put back to pending, or failed when its attempts are used up) and marks it
``in_progress`` for the claiming agent with a fresh random lease token until
``lease_expires_at``. Heartbeat, complete and fail carry that token: a call whose lease is no
longer the holder's (expired, taken over, finished) is refused with ConflictError and changes
nothing, so a task is completed at most once in effect, whatever a worker that comes back from
the dead says. On PostgreSQL claims lock with ``FOR UPDATE SKIP LOCKED`` (claimers never wait on
each other); SQLite serializes writers already.

Every claim, completion, failure, expiry and requeue is a history row (actions ``claim``,
``complete``, ``retry``, ``fail``, ``expire``, ``requeue``); heartbeats are not. Statements are
Core (one or two per step) on the caller's connection (the API gives each call a Core
transaction, ``Database.writes``, not a session): the queue's hot path builds no ORM objects,
and its statements are built once with bound parameters (building a statement costs more than
running it).

The modules, each importing only those after it: ``claims`` (claim, and the waiters' read),
``expiry`` (leases that ran out: the sweep, requeue, the stuck and dead lists), ``leases``
(heartbeat, complete, fail), ``statements`` (the tables and the shared statements).
"""

from swarm_director.schemas.queue import MAX_LEASE_S
from swarm_director.store.queue.claims import PRIORITY_ORDER, claim_tasks, has_ready_task
from swarm_director.store.queue.expiry import (
    EXPIRE_BATCH,
    EXPIRY_ACTOR,
    expire_leases,
    list_dead_tasks,
    list_expired_leases,
    requeue_task,
)
from swarm_director.store.queue.leases import (
    Backoff,
    Claim,
    complete_task,
    fail_task,
    heartbeat,
)

__all__ = [
    "EXPIRE_BATCH",
    "EXPIRY_ACTOR",
    "MAX_LEASE_S",
    "PRIORITY_ORDER",
    "Backoff",
    "Claim",
    "claim_tasks",
    "complete_task",
    "expire_leases",
    "fail_task",
    "has_ready_task",
    "heartbeat",
    "list_dead_tasks",
    "list_expired_leases",
    "requeue_task",
]
