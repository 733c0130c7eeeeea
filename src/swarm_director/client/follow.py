"""The state of following a log stream across reconnects (shared by both clients).

The server's events carry the keyset cursor of each record as the SSE ``id``; the follower
keeps the last one and sends it back as ``Last-Event-ID`` when it reconnects, so a dropped
connection loses and repeats nothing.
"""

from __future__ import annotations

import time

import httpx

from swarm_director.client.errors import error_for
from swarm_director.client.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after
from swarm_director.client.sse import EventParser
from swarm_director.schemas import LogOut

#: How long to wait for a line before taking the connection for dead (the server sends a
#: heartbeat every 15 s by default).
DEFAULT_READ_TIMEOUT = 60.0


class Follower:
    """Turns stream lines into records and decides about reconnecting.

    ``idle_timeout``: stop (end the iteration) once no record arrived for that long.
    """

    def __init__(self, cursor: str | None, idle_timeout: float | None, read_timeout: float) -> None:
        self.parser = EventParser(last_id=cursor)
        self.idle_timeout = idle_timeout
        self.read_timeout = (
            read_timeout if idle_timeout is None else max(0.1, min(read_timeout, idle_timeout))
        )
        self.failures = 0
        self._last_record = time.monotonic()

    @property
    def cursor(self) -> str | None:
        """Where the stream stands: the id of the last event received."""
        return self.parser.last_id

    def headers(self) -> dict[str, str]:
        """Headers of the next (re)connection."""
        headers = {"Accept": "text/event-stream"}
        if self.parser.last_id:
            headers["Last-Event-ID"] = self.parser.last_id
        return headers

    def connected(self) -> None:
        """The server accepted the stream."""
        self.failures = 0
        self.parser = EventParser(last_id=self.parser.last_id)  # drop a half-read event

    def feed(self, line: str) -> LogOut | None:
        """A record when ``line`` completes a log event."""
        event = self.parser.feed(line)
        if event is None or event.heartbeat or event.event != "message" or not event.data:
            return None
        self._last_record = time.monotonic()
        return LogOut.model_validate_json(event.data)

    def idle(self) -> bool:
        """True when the caller's ``idle_timeout`` has passed without a record."""
        return (
            self.idle_timeout is not None
            and time.monotonic() - self._last_record >= self.idle_timeout
        )

    def delay(self, policy: RetryPolicy, failure: Exception | None = None) -> float:
        """Seconds to wait before reconnecting after the stream ended: closed by the server
        (``failure`` None), lost (an ``httpx.TransportError``) or refused (:class:`Refused`);
        raises the refusal's error when it is not worth it.

        Lost connections and 429/502/503/504 are retried for as long as the caller iterates
        (with backoff up to ``policy.max_backoff``); other errors (401, 403, 404, 422) end it.
        """
        retry_after = None
        if isinstance(failure, Refused):
            if failure.error.status not in RETRY_STATUSES:
                raise failure.error
            retry_after = failure.retry_after
        self.failures += 1
        wait = policy.backoff_delay(self.failures)
        return max(wait, min(parse_retry_after(retry_after) or 0.0, policy.max_retry_after))


class Refused(Exception):
    """A stream request answered with an error status."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.error = error_for(response.status_code, response.content)
        self.retry_after: str | None = response.headers.get("Retry-After")
