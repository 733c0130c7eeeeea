"""The blocking client: :class:`Client`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from swarm_director.client.calls import Call
from swarm_director.client.follow import DEFAULT_READ_TIMEOUT, Follower, Refused
from swarm_director.client.log_export import ExportFormat, ExportResult, LogExport, Target, opened
from swarm_director.client.log_operations import stream_request
from swarm_director.client.surface import Surface, SyncSender
from swarm_director.client.transport import ClientState, delay_after_error, outcome, request_kwargs
from swarm_director.client.worker import Job, WorkOptions, work
from swarm_director.schemas import LogOut
from swarm_director.schemas.filters import LogFilterArgs, TaskLogFilterArgs

T = TypeVar("T")


class Client(ClientState[httpx.BaseTransport], Surface, SyncSender):
    """The SwarmDirector API over HTTP, blocking; one pool of kept-alive connections.

    ``token`` is sent as ``Authorization: Bearer <token>``. ``timeout`` bounds connecting and
    each read, in seconds. ``retry`` says how often idempotent calls and batch ingest are
    repeated after a lost connection or a 429/502/503/504. Use it as a context manager or call
    :meth:`close`. Errors are :class:`~swarm_director.client.errors.ClientError` subclasses.

    >>> with Client("http://127.0.0.1:5000", token="...") as client:
    ...     task = client.create_task({"type": "analysis", "title": "Q3 numbers"})
    """

    _pool = httpx.Client
    _http: httpx.Client

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        policy = self.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(**request_kwargs(call, self.options, self.positions))
            except httpx.TransportError as error:
                time.sleep(delay_after_error(policy, call, attempt, error))
                continue
            self.positions.observe(response)
            delay = outcome(policy, call, attempt, response)
            if delay is None:
                return call.parse(response.content)
            time.sleep(delay)

    def work(
        self, agent_id: int, **options: Unpack[WorkOptions]
    ) -> AbstractContextManager[Job | None]:
        """Claim one task and hold its lease while the ``with`` block works on it; the block's
        end completes it with ``job.result``, an exception fails it (see
        :mod:`swarm_director.client.worker`). Yields None when no task became ready."""
        return work(self, agent_id, **options)

    def follow_logs(
        self,
        task_id: int | None = None,
        *,
        cursor: str | None = None,
        idle_timeout: float | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        **filters: Unpack[TaskLogFilterArgs],
    ) -> Iterator[LogOut]:
        """Yield log records as they are stored (of one task, or all), until the caller stops.

        Starts after ``cursor`` (an event id seen before), else with records stored from now
        on. A lost connection is re-opened with the last id, so nothing is lost or repeated.
        ``idle_timeout`` ends the iteration after that many seconds without a record.
        ``filters`` are those of the log lists (the fields of
        :class:`~swarm_director.schemas.filters.TaskLogFilter`).
        """
        follower = Follower(cursor, idle_timeout, read_timeout)
        path, params = stream_request(task_id, filters)
        timeout = self.options.stream_timeout(follower.read_timeout)
        policy = self.options.retry
        while not follower.idle():
            try:
                yield from self._follow_once(follower, path, params, timeout)
                delay = follower.delay(policy)  # the server ended it: shutdown, max age
            except (Refused, httpx.TransportError) as failure:
                delay = follower.delay(policy, failure)
            if not follower.idle():
                time.sleep(delay)

    def export_logs(
        self,
        path_or_file: Target,
        *,
        format: ExportFormat = "jsonl",
        cursor: int | None = None,
        **filters: Unpack[LogFilterArgs],
    ) -> ExportResult:
        """Write every log matching ``filters`` (those of :meth:`list_logs`) to
        ``path_or_file`` as JSON lines or CSV (``format``), streamed from
        ``GET /api/export/logs``: memory stays small whatever the size.

        A path is written whole or not at all (a hidden ``.part-`` file renamed into place; an
        existing file is replaced only when the export succeeds); a binary file object gets
        the rows as they come, complete rows only. ``cursor`` (the :attr:`ExportResult.cursor`
        of an earlier export) exports only the rows after it. A connection lost mid-body is
        resumed after the last complete row under the retry policy. Errors are those of the
        other calls: ValidationError for a bad filter value, NotFoundError for a missing
        ``task_id``, ServerUnreachableError when the connection cannot be resumed.
        """
        export = LogExport(format, cursor, filters, self.options.retry)
        with opened(path_or_file) as (sink, path):
            while True:
                call = request_kwargs(export.call(), self.options, self.positions)
                try:
                    with self._http.stream(**call) as response:
                        if response.status_code >= 400:
                            response.read()
                            delay = export.refused(response)
                        else:
                            for chunk in response.iter_bytes():
                                sink.write(export.feed(chunk))
                            export.ended()
                            return export.result(path)
                except httpx.TransportError as error:
                    delay = export.lost(error)
                time.sleep(delay)

    def _follow_once(
        self, follower: Follower, path: str, params: dict[str, str], timeout: httpx.Timeout
    ) -> Iterator[LogOut]:
        headers = self.positions.headers(follower.headers())
        with self._http.stream(
            "GET", path, params=params, headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                response.read()
                raise Refused(response)
            follower.connected()
            for line in response.iter_lines():
                record = follower.feed(line)
                if record is not None:
                    yield record
                if follower.idle():
                    return
