"""The asyncio client: :class:`AsyncClient` (the same surface as the blocking one)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from swarm_director.client.calls import Call
from swarm_director.client.follow import DEFAULT_READ_TIMEOUT, Follower, Refused
from swarm_director.client.log_export import ExportFormat, ExportResult, LogExport, Target, opened
from swarm_director.client.log_operations import stream_request
from swarm_director.client.surface import AsyncSender, Surface
from swarm_director.client.transport import ClientState, delay_after_error, outcome, request_kwargs
from swarm_director.client.worker import Job, WorkOptions, awork
from swarm_director.schemas import LogOut
from swarm_director.schemas.filters import LogFilterArgs, TaskLogFilterArgs

T = TypeVar("T")


class AsyncClient(ClientState[httpx.AsyncBaseTransport], Surface, AsyncSender):
    """The SwarmDirector API over HTTP for asyncio: :class:`~swarm_director.client.Client`'s
    methods, each a coroutine (``iter_*`` and :meth:`follow_logs` are async iterators), made
    with the same arguments (``transport``: an ``httpx.AsyncBaseTransport``). Use it as an
    async context manager or await :meth:`close`.

    >>> async with AsyncClient("http://127.0.0.1:5000", token="...") as client:
    ...     task = await client.create_task({"type": "analysis", "title": "Q3 numbers"})
    """

    _pool = httpx.AsyncClient
    _http: httpx.AsyncClient

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        policy = self.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    **request_kwargs(call, self.options, self.positions)
                )
            except httpx.TransportError as error:
                await asyncio.sleep(delay_after_error(policy, call, attempt, error))
                continue
            self.positions.observe(response)
            delay = outcome(policy, call, attempt, response)
            if delay is None:
                return call.parse(response.content)
            await asyncio.sleep(delay)

    def work(
        self, agent_id: int, **options: Unpack[WorkOptions]
    ) -> AbstractAsyncContextManager[Job | None]:
        """:meth:`Client.work` for asyncio: ``async with aclient.work(agent_id) as job``."""
        return awork(self, agent_id, **options)

    async def follow_logs(
        self,
        task_id: int | None = None,
        *,
        cursor: str | None = None,
        idle_timeout: float | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        **filters: Unpack[TaskLogFilterArgs],
    ) -> AsyncIterator[LogOut]:
        """:meth:`Client.follow_logs` for asyncio: ``async for record in
        aclient.follow_logs(task_id, level="warning")``."""
        follower = Follower(cursor, idle_timeout, read_timeout)
        path, params = stream_request(task_id, filters)
        timeout = self.options.stream_timeout(follower.read_timeout)
        policy = self.options.retry
        while not follower.idle():
            try:
                async for record in self._follow_once(follower, path, params, timeout):
                    yield record
                delay = follower.delay(policy)  # the server ended it: shutdown, max age
            except (Refused, httpx.TransportError) as failure:
                delay = follower.delay(policy, failure)
            if not follower.idle():
                await asyncio.sleep(delay)

    async def export_logs(
        self,
        path_or_file: Target,
        *,
        format: ExportFormat = "jsonl",
        cursor: int | None = None,
        **filters: Unpack[LogFilterArgs],
    ) -> ExportResult:
        """:meth:`Client.export_logs` for asyncio (the file is written by blocking writes of
        the chunks as they arrive)."""
        export = LogExport(format, cursor, filters, self.options.retry)
        with opened(path_or_file) as (sink, path):
            while True:
                call = request_kwargs(export.call(), self.options, self.positions)
                try:
                    async with self._http.stream(**call) as response:
                        if response.status_code >= 400:
                            await response.aread()
                            delay = export.refused(response)
                        else:
                            async for chunk in response.aiter_bytes():
                                sink.write(export.feed(chunk))
                            export.ended()
                            return export.result(path)
                except httpx.TransportError as error:
                    delay = export.lost(error)
                await asyncio.sleep(delay)

    async def _follow_once(
        self, follower: Follower, path: str, params: dict[str, str], timeout: httpx.Timeout
    ) -> AsyncIterator[LogOut]:
        headers = self.positions.headers(follower.headers())
        async with self._http.stream(
            "GET", path, params=params, headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise Refused(response)
            follower.connected()
            async for line in response.aiter_lines():
                record = follower.feed(line)
                if record is not None:
                    yield record
                if follower.idle():
                    return
