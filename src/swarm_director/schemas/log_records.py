"""From a :class:`logging.LogRecord` to an agent log row: one mapping for both log handlers.

``swarm_director.agent_logging.AgentLogHandler`` (writes to the database) and
``swarm_director.client.RemoteLogHandler`` (posts to the API) store the same fields the same
way: defaults from the handler, overridden by the record's ``extra`` of the same names.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from swarm_director.schemas.logs import MAX_AGENT_TYPE, MAX_LOG_MESSAGE

Row = dict[str, Any]

_MAX_SESSION_ID = 100


def level_name(levelno: int) -> str:
    """The agent log level of a :mod:`logging` level number (below INFO is debug, etc.)."""
    if levelno < logging.INFO:
        return "debug"
    if levelno < logging.WARNING:
        return "info"
    if levelno < logging.ERROR:
        return "warning"
    return "error"


def as_id(value: Any) -> int | None:
    """``value`` as a positive row id, or None when it cannot be one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON the store accepts: finite numbers, string keys; the rest as str()."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < 20 and isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if depth < 20 and isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)


def _text_or_none(value: Any, max_chars: int) -> str | None:
    text = str(value).strip()[:max_chars] if value is not None else ""
    return text or None


@dataclass
class RecordDefaults:
    """A handler's defaults for the fields a record's ``extra`` may override."""

    task_id: int | None = None
    agent_type: str | None = None
    agent_id: int | None = None
    session_id: str | None = None


def record_row(record: logging.LogRecord, message: str, defaults: RecordDefaults) -> Row | None:
    """The log row for ``record`` (with ``task_id``), or None when it names no task.

    ``message`` is the formatted record. ``agent_type`` falls back to the logger's name; the
    logger, level name, module, function and line go into ``metadata`` next to the record's
    ``extra={"metadata": {...}}``. Values too long for their columns are cut, so one verbose
    record cannot make its whole batch fail validation. The timestamp is a datetime.
    """
    fields = record.__dict__
    task_id = as_id(fields.get("task_id", defaults.task_id))
    if task_id is None:
        return None
    agent_type = str(fields.get("agent_type") or defaults.agent_type or record.name)
    session_id = fields.get("session_id", defaults.session_id)
    metadata: dict[str, Any] = {
        "logger": record.name,
        "level_name": record.levelname,
        "module": record.module,
        "function": record.funcName,
        "line": record.lineno,
    }
    extra = fields.get("metadata")
    if isinstance(extra, dict):
        metadata.update(json_safe(extra))
    return {
        "task_id": task_id,
        "agent_type": agent_type.strip()[:MAX_AGENT_TYPE] or "agent",
        "message": (message or "(empty message)")[:MAX_LOG_MESSAGE],
        "log_level": level_name(record.levelno),
        "timestamp": datetime.fromtimestamp(record.created, UTC),
        "agent_id": as_id(fields.get("agent_id", defaults.agent_id)),
        "session_id": _text_or_none(session_id, _MAX_SESSION_ID),
        "metadata": metadata,
    }
