"""``RemoteLogHandler``: Python :mod:`logging` to the API's batch log ingest.

The queue, the sender thread, flush, close and drop reports are
:class:`swarm_director.log_batching.BatchingLogHandler`'s, shared with the database handler;
this module only says how a batch leaves: ``POST /api/tasks/{id}/logs`` with the batch's
``Idempotency-Key``, so a batch re-sent after a lost answer is stored once. No answer, 429 and
5xx mean "send it again later"; other refusals lose the batch (a 422 row by row).
"""

from __future__ import annotations

from typing import Unpack

from swarm_director.client.errors import (
    ClientError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from swarm_director.client.retry import RetryPolicy
from swarm_director.client.sync import Client
from swarm_director.log_batching import (
    Batch,
    BatchingLogHandler,
    BatchOptions,
    Refused,
    SendLater,
)
from swarm_director.schemas.log_records import RecordDefaults


def _transient(error: ClientError) -> bool:
    """Worth re-sending (with the same key): no answer, 429, or a server-side failure."""
    return (
        isinstance(error, UnavailableError)
        or error.status is None
        or error.status == 429
        or error.status >= 500
    )


class RemoteLogHandler(BatchingLogHandler):
    """A :class:`logging.Handler` that stores records as agent logs through the REST API.

    ``task_id``, ``agent_type``, ``agent_id`` and ``session_id`` are defaults; a record's
    ``extra`` of the same names wins and ``extra={"metadata": {...}}`` is stored with the row,
    exactly as :class:`swarm_director.agent_logging.AgentLogHandler` does. Records naming no
    task are skipped (counted in :attr:`skipped`). At most ``max_queue`` records wait;
    ``timeout`` bounds one request; the other options (``level``, ``batch_size``,
    ``flush_interval``, ``flush_timeout``, ``close_timeout``, ``max_backoff``) are
    :class:`~swarm_director.log_batching.BatchingLogHandler`'s, and so are the counters:
    :attr:`sent`, :attr:`dropped`, :attr:`rejected`, :attr:`skipped`, :attr:`last_error`,
    :attr:`pending`.
    """

    destination = "server"
    delivered = "sent"
    kind = "remote"

    def __init__(
        self,
        base_url: str,
        *,
        task_id: int | None,
        agent_type: str | None,
        token: str | None = None,
        agent_id: int | None = None,
        session_id: str | None = None,
        max_queue: int = 10_000,
        timeout: float = 10.0,
        **options: Unpack[BatchOptions],
    ) -> None:
        # The core retries forever itself; the client must not sleep inside a call.
        self._client = Client(base_url, token, timeout=timeout, retry=RetryPolicy(attempts=1))
        super().__init__(
            RecordDefaults(task_id, agent_type, agent_id, session_id),
            max_queue=max_queue,
            **options,
        )

    def _send(self, batch: Batch) -> int:
        try:
            result = self._client.add_logs(batch.task_id, batch.rows, idempotency_key=batch.key)
        except ClientError as error:
            if _transient(error):
                raise SendLater(f"{error.code}: {error.message}") from error
            if isinstance(error, NotFoundError):
                raise Refused(f"task {batch.task_id} does not exist", split=False) from error
            if isinstance(error, UnauthorizedError | ForbiddenError):
                raise Refused("the token is not accepted", split=False) from error
            # A 422 may be one bad row of many; other refusals concern the whole batch.
            raise Refused(error.message, split=isinstance(error, ValidationError)) from error
        return result.inserted

    def _release(self) -> None:
        self._client.close()
