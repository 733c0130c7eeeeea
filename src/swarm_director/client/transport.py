"""What the sync and async transports share: connection options and the retry decisions.

Retried: a connection that could not be opened (nothing was sent, so any request is safe to
repeat); for calls marked ``retry`` (idempotent methods, batch ingest with its
``Idempotency-Key``) also a connection lost mid-request, a timeout, and the statuses 429, 502,
503 and 504, honouring ``Retry-After``. Every other failure is raised at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import httpx

from swarm_director import __version__
from swarm_director.client.calls import Call
from swarm_director.client.consistency import PositionTracker
from swarm_director.client.errors import ClientError, error_for, unreachable
from swarm_director.client.retry import RETRY_STATUSES, RetryPolicy

#: Idle pooled connections are dropped after this long, before the server's keep-alive
#: timeout (``swarm-director serve`` keeps them 10 s) can close one under a new request.
KEEPALIVE_EXPIRY = 4.0


@dataclass(frozen=True)
class ClientOptions:
    """How a client reaches the server."""

    base_url: str
    token: str | None = None
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_connections: int = 20

    def httpx_kwargs(self) -> dict[str, Any]:
        """Arguments for ``httpx.Client``/``httpx.AsyncClient``: one pool, reused."""
        headers = {"User-Agent": f"swarm-director-client/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {
            "base_url": self.base_url.rstrip("/"),
            "headers": headers,
            "timeout": httpx.Timeout(self.timeout),
            "limits": httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        }

    def stream_timeout(self, read: float) -> httpx.Timeout:
        """Timeouts of a stream: the usual ones, but ``read`` between two lines."""
        return httpx.Timeout(self.timeout, read=read)


TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class ClientState(Generic[TransportT]):
    """What both clients are made of: their options, their commit position, and one pool of
    kept-alive connections (``_pool``: ``httpx.Client`` or ``httpx.AsyncClient``)."""

    _pool: ClassVar[Callable[..., Any]]

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: TransportT | None = None,
    ) -> None:
        self.options = ClientOptions(base_url, token, timeout, retry or RetryPolicy())
        self.positions = PositionTracker()
        """The commit position of this client's newest write, sent with every request so
        that a server with read replicas answers with what this client wrote."""
        self._http = self._pool(transport=transport, **self.options.httpx_kwargs())


def request_kwargs(
    call: Call[Any], options: ClientOptions, positions: PositionTracker
) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client.request`` for ``call``, with the client's commit
    position (read-your-writes)."""
    kwargs: dict[str, Any] = {
        "method": call.method,
        "url": call.path,
        "params": call.params or None,
        "content": call.content,
        "headers": positions.headers(call.headers or None),
    }
    if call.wait_s:
        kwargs["timeout"] = httpx.Timeout(options.timeout, read=options.timeout + call.wait_s)
    return kwargs


def delay_after_error(
    policy: RetryPolicy, call: Call[Any], attempt: int, error: httpx.TransportError
) -> float:
    """Seconds to wait before repeating ``call`` after ``error``; raises when not to repeat."""
    never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
    delay = policy.delay(attempt) if (call.retry or never_sent) else None
    if delay is None:
        raise unreachable(error) from error
    return delay


def outcome(
    policy: RetryPolicy, call: Call[Any], attempt: int, response: httpx.Response
) -> float | None:
    """None when ``response`` is a success; else seconds to wait before repeating ``call``.
    Raises the typed :class:`ClientError` when it is not to be repeated."""
    status = response.status_code
    if status < 400:
        return None
    if call.retry and status in RETRY_STATUSES:
        delay = policy.delay(attempt, response.headers.get("Retry-After"))
        if delay is not None:
            return delay
    raise error_for(status, response.content)


def stream_error(status: int, content: bytes) -> ClientError:
    """The error of a stream request answered with ``status``."""
    return error_for(status, content)
