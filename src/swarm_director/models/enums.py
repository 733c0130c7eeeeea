"""Enumerations stored as short strings with a CHECK constraint (portable, no native enum).

The enumerations themselves live in :mod:`swarm_director.enums` (no SQLAlchemy there, so the
schemas and the HTTP client can use them); this module adds their column type.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum

from swarm_director.enums import (
    LOG_LEVEL_ORDER,
    AgentStatus,
    AgentType,
    ConversationStatus,
    DraftStatus,
    EmailStatus,
    LogLevel,
    MaintenanceOperation,
    MaintenanceStatus,
    MessageType,
    TaskPriority,
    TaskStatus,
    TaskType,
)

__all__ = [
    "LOG_LEVEL_ORDER",
    "AgentStatus",
    "AgentType",
    "ConversationStatus",
    "DraftStatus",
    "EmailStatus",
    "LogLevel",
    "MaintenanceOperation",
    "MaintenanceStatus",
    "MessageType",
    "TaskPriority",
    "TaskStatus",
    "TaskType",
    "enum_type",
]


def enum_type(enum_cls: type[StrEnum], name: str) -> Enum:
    """A VARCHAR column type holding ``enum_cls`` values, with a CHECK constraint ``name``."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        validate_strings=True,
        values_callable=lambda cls: [member.value for member in cls],
    )
