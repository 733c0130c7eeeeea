"""Slowing down guessing: failed logins and bearer tokens, counted per client address and per
API key id, answered with 429 once there were too many in a window.

The counts live in the memory of each server process (a gunicorn worker counts what it saw):
a client spread over W workers gets at most W times the limit before every worker refuses
it, which still turns thousands of guesses a second into a handful a minute. Sharing the
counts through the database was rejected: every failed request would become a write, which is
the very load an attacker would then be able to cause.

Memory is bounded: at most :data:`MAX_TRACKED` addresses and key ids are remembered, each
with at most ``limit`` timestamps; when full, the one not seen for longest is forgotten (an
attacker rotating addresses evicts entries, but each address still gets only ``limit``
guesses per window).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

#: Most addresses and key ids remembered at once (about 1 kB each at the default limit).
MAX_TRACKED = 10_000


class FailureCounter:
    """Failures per subject (``"address 10.0.0.7"``, ``"key 0123456789ab"``) in a sliding
    window. Thread-safe."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, subjects: Iterable[str]) -> int | None:
        """Seconds until every one of ``subjects`` may try again, or None when none of them
        has reached the limit."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for subject in subjects:
                times = self._failures.get(subject)
                if times is None:
                    continue
                self._expire(times, now)
                if len(times) >= self.limit:
                    wait = max(wait, times[0] + self.window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, subjects: Iterable[str]) -> bool:
        """Count one failure against each of ``subjects``; True when one of them has just
        reached the limit (the caller logs that once)."""
        now = self._clock()
        reached = False
        with self._lock:
            for subject in subjects:
                times = self._failures.pop(subject, None)
                if times is None:
                    times = deque(maxlen=self.limit)
                self._expire(times, now)
                times.append(now)
                self._failures[subject] = times  # now the most recently seen
                reached = reached or len(times) == self.limit
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)
        return reached

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()
