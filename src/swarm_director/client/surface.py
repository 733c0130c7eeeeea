"""The clients' shared surface: every operation written once, bound to either transport.

:class:`Operation` and :class:`Pager` are descriptors around the builder functions of
:mod:`.operations`. Looked up on a :class:`SyncSender` they give a method returning the result;
on an :class:`AsyncSender`, one returning an awaitable (or an async iterator for ``iter_*``).
The typing follows through ``ParamSpec``, so ``client.get_task(7)`` is a ``TaskOut`` for mypy
and ``await aclient.get_task(7)`` too, without writing the surface twice.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, ParamSpec, TypeVar, overload

from swarm_director.client import conversation_operations as conv
from swarm_director.client import log_operations as logs
from swarm_director.client import operations as ops
from swarm_director.client import queue_operations as queue
from swarm_director.client import report_operations as report
from swarm_director.client.calls import Call
from swarm_director.schemas import PageOut

P = ParamSpec("P")
T = TypeVar("T")


class SyncSender:
    """Base of the blocking client: sends one call, or walks the pages of a list."""

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    def _pages(
        self, build: Callable[..., Call[PageOut[T]]], args: Any, kwargs: dict[str, Any]
    ) -> Iterator[T]:
        while True:
            page = self._send(build(*args, **kwargs))
            yield from page.items
            if page.next_cursor is None:
                return
            kwargs = {**kwargs, "cursor": page.next_cursor}


class AsyncSender:
    """Base of the asyncio client."""

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def _pages(
        self, build: Callable[..., Call[PageOut[T]]], args: Any, kwargs: dict[str, Any]
    ) -> AsyncIterator[T]:
        while True:
            page = await self._send(build(*args, **kwargs))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            kwargs = {**kwargs, "cursor": page.next_cursor}


class Operation(Generic[P, T]):
    """A method that sends the call its builder makes and returns the parsed answer."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.name = build.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Operation[P, T]: ...
    @overload
    def __get__(self, obj: SyncSender, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncSender, owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        build, send = self.build, obj._send

        @functools.wraps(build)
        def method(*args: Any, **kwargs: Any) -> Any:
            return send(build(*args, **kwargs))

        obj.__dict__[self.name] = method  # later lookups skip the descriptor
        return method


class Pager(Generic[P, T]):
    """A method that yields the items of every page of a list, fetching pages lazily."""

    def __init__(self, build: Callable[P, Call[PageOut[T]]]) -> None:
        self.build = build
        self.__doc__ = f"Every item of ``{build.__name__}``, following ``next_cursor`` lazily."
        self.name = build.__name__.replace("list_", "iter_", 1)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Pager[P, T]: ...
    @overload
    def __get__(self, obj: SyncSender, owner: type) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, obj: AsyncSender, owner: type) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        build, pages = self.build, obj._pages

        def method(*args: Any, **kwargs: Any) -> Any:
            return pages(build, args, kwargs)

        method.__doc__, method.__name__ = self.__doc__, self.name
        obj.__dict__[self.name] = method
        return method


class Surface:
    """Every API operation, as methods of both clients (see the builders for parameters)."""

    health = Operation(ops.health)
    ready = Operation(ops.ready)
    admin_stats = Operation(ops.admin_stats)

    list_agents = Operation(ops.list_agents)
    iter_agents = Pager(ops.list_agents)
    create_agent = Operation(ops.create_agent)
    get_agent = Operation(ops.get_agent)
    update_agent = Operation(ops.update_agent)
    delete_agent = Operation(ops.delete_agent)

    list_tasks = Operation(ops.list_tasks)
    iter_tasks = Pager(ops.list_tasks)
    create_task = Operation(ops.create_task)
    get_task = Operation(ops.get_task)
    update_task = Operation(ops.update_task)
    delete_task = Operation(ops.delete_task)
    list_subtasks = Operation(ops.list_subtasks)
    iter_subtasks = Pager(ops.list_subtasks)

    claim_tasks = Operation(queue.claim_tasks)
    heartbeat = Operation(queue.heartbeat)
    complete_task = Operation(queue.complete_task)
    fail_task = Operation(queue.fail_task)
    requeue_task = Operation(queue.requeue_task)
    list_expired_leases = Operation(queue.list_expired_leases)
    list_dead_tasks = Operation(queue.list_dead_tasks)

    list_history = Operation(queue.list_history)
    iter_history = Pager(queue.list_history)
    list_task_history = Operation(queue.list_task_history)
    iter_task_history = Pager(queue.list_task_history)
    list_agent_history = Operation(queue.list_agent_history)
    iter_agent_history = Pager(queue.list_agent_history)
    list_draft_history = Operation(queue.list_draft_history)
    list_email_history = Operation(queue.list_email_history)
    list_conversation_history = Operation(queue.list_conversation_history)

    report_tasks = Operation(report.report_tasks)
    report_durations = Operation(report.report_durations)
    report_failures = Operation(report.report_failures)
    report_logs = Operation(report.report_logs)
    report_emails = Operation(report.report_emails)
    report_drafts = Operation(report.report_drafts)

    list_logs = Operation(logs.list_logs)
    iter_logs = Pager(logs.list_logs)
    list_task_logs = Operation(logs.list_task_logs)
    iter_task_logs = Pager(logs.list_task_logs)
    add_log = Operation(logs.add_log)
    add_logs = Operation(logs.add_logs)

    list_drafts = Operation(ops.list_drafts)
    iter_drafts = Pager(ops.list_drafts)
    create_draft = Operation(ops.create_draft)
    get_draft = Operation(ops.get_draft)
    get_draft_version = Operation(ops.get_draft_version)
    diff_drafts = Operation(ops.diff_drafts)
    review_draft = Operation(ops.review_draft)

    list_task_emails = Operation(ops.list_task_emails)
    iter_task_emails = Pager(ops.list_task_emails)
    create_email = Operation(ops.create_email)
    list_emails = Operation(ops.list_emails)
    iter_emails = Pager(ops.list_emails)
    list_outbox = Operation(ops.list_outbox)
    iter_outbox = Pager(ops.list_outbox)
    get_email = Operation(ops.get_email)
    update_email = Operation(ops.update_email)
    set_email_status = Operation(ops.set_email_status)

    list_conversations = Operation(conv.list_conversations)
    iter_conversations = Pager(conv.list_conversations)
    create_conversation = Operation(conv.create_conversation)
    get_conversation = Operation(conv.get_conversation)
    update_conversation = Operation(conv.update_conversation)
    delete_conversation = Operation(conv.delete_conversation)
    list_participants = Operation(conv.list_participants)
    iter_participants = Pager(conv.list_participants)
    add_participant = Operation(conv.add_participant)
    remove_participant = Operation(conv.remove_participant)
    list_messages = Operation(conv.list_messages)
    iter_messages = Pager(conv.list_messages)
    add_message = Operation(conv.add_message)
    get_message = Operation(conv.get_message)
    edit_message = Operation(conv.edit_message)
