"""The domain's enumerations, without SQLAlchemy: shared by the models (stored as short strings
with a CHECK constraint, see :mod:`swarm_director.models.enums`), the schemas and the HTTP client,
which must import neither SQLAlchemy nor Flask."""

from __future__ import annotations

from enum import StrEnum


class AgentType(StrEnum):
    SUPERVISOR = "supervisor"
    COORDINATOR = "coordinator"
    WORKER = "worker"
    SPECIALIST = "specialist"


class AgentStatus(StrEnum):
    IDLE = "idle"
    ACTIVE = "active"
    BUSY = "busy"
    OFFLINE = "offline"
    ERROR = "error"


class TaskType(StrEnum):
    EMAIL_DRAFT = "email_draft"
    DOCUMENT_REVIEW = "document_review"
    COMMUNICATION = "communication"
    ANALYSIS = "analysis"


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class DraftStatus(StrEnum):
    DRAFT = "draft"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class EmailStatus(StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class MessageType(StrEnum):
    TEXT = "text"
    SYSTEM = "system"
    ERROR = "error"
    NOTIFICATION = "notification"


class MaintenanceOperation(StrEnum):
    MIGRATE = "migrate"
    SEED = "seed"
    RESET = "reset"
    BACKUP = "backup"
    RESTORE = "restore"
    VERIFY = "verify"
    OPTIMIZE = "optimize"
    CLEANUP = "cleanup"
    CHECK = "check"


class MaintenanceStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


#: Log levels from least to most severe; "minimum level" filters use this order.
LOG_LEVEL_ORDER: tuple[LogLevel, ...] = tuple(LogLevel)
