"""An error log's pattern: its message with numbers and ids masked, so that errors which
differ only in those group together (``agent_logs.error_pattern``; the failures report).

Masking is done in Python, not SQL: SQLite has no regular expressions, and one function keeps
both dialects' groups identical.
"""

from __future__ import annotations

import re

from swarm_director.enums import LogLevel

#: Longest pattern kept; a longer masked message is cut here.
PATTERN_LENGTH = 200

_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)
_ERROR = LogLevel.ERROR.value


def mask(message: str) -> str:
    """``message`` with UUIDs, long hex ids and numbers replaced by placeholders, on one line
    of at most :data:`PATTERN_LENGTH` characters."""
    text = " ".join(message.split())
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text[:PATTERN_LENGTH]


def error_pattern(message: str | None) -> str:
    """The pattern of an error log: its masked message, ``(no message)`` for an empty one."""
    return mask(message or "(no message)")


def pattern_of(level: str, message: str | None) -> str | None:
    """What ``agent_logs.error_pattern`` holds for a log: :func:`error_pattern` at the error
    level, else None."""
    return error_pattern(message) if level == _ERROR else None
