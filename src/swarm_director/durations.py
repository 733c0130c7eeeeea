"""Durations as people write them in settings and options: ``30d``, ``12h``, ``90m``,
``2w``, ``45s``."""

from __future__ import annotations

import re
from datetime import timedelta

from swarm_director.errors import SwarmError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: Units for formatting (weeks left out: "14d" reads better than "2w").
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
#: A cutoff further back than this is no policy, and a date before year 1 cannot be computed.
MAX_DURATION = timedelta(days=36500)


class DurationError(SwarmError, ValueError):
    """A duration that is not ``<number><s|m|h|d|w>`` or exceeds :data:`MAX_DURATION`.

    Also a ValueError, so that a settings field of this type reports it as invalid input."""


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as a timedelta, at most 100 years."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if match is None:
        raise DurationError(f"invalid duration {text!r}: use a number and s, m, h, d or w (30d)")
    try:
        duration = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        duration = MAX_DURATION + timedelta(days=1)
    if duration > MAX_DURATION:
        raise DurationError(f"invalid duration {text!r}: at most 100 years ({MAX_DURATION.days}d)")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest ``<whole number><unit>`` that equals ``duration`` (``30d``, ``90m``)."""
    seconds = duration.total_seconds()
    for unit, size in _SECONDS.items():
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
