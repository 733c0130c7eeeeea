"""When to repeat a request, and how long to wait first.

Shared by the sync and async transports: they ask :meth:`RetryPolicy.delay` and sleep in
their own way. Backoff is exponential with "equal jitter" (half fixed, half random), so many
agents that lost the server at the same moment do not come back in lockstep; a server's
``Retry-After`` is a floor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Statuses that mean "not now": the request was not (or may not have been) processed.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts every try (1 = never retry). The n-th wait is drawn from
    ``[b/2, b]`` with ``b = min(max_backoff, backoff * 2**n)``; a ``Retry-After`` longer than
    ``max_retry_after`` is not waited for (the error is raised instead).
    """

    attempts: int = 5
    backoff: float = 0.2
    max_backoff: float = 5.0
    max_retry_after: float = 60.0

    def backoff_delay(self, attempt: int) -> float:
        """The wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto

    def delay(self, attempt: int, retry_after: str | None = None) -> float | None:
        """Seconds to wait before repeating after try ``attempt`` failed, or None to give up."""
        if attempt >= self.attempts:
            return None
        wait = self.backoff_delay(attempt)
        floor = parse_retry_after(retry_after)
        if floor is not None:
            if floor > self.max_retry_after:
                return None
            wait = max(wait, floor)
        return wait


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (it is either a number of seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
