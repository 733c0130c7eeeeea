"""The vocabulary of the store: statuses, types and levels, shared by the models (stored as
short strings with a CHECK constraint, see ``db.types.enum_type``), the API schemas and the
client. No dependencies, so an agent importing the schemas imports no database code."""

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
    KEY_CREATE = "key_create"
    KEY_REVOKE = "key_revoke"


class ApiScope(StrEnum):
    """What an API key may do; each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def grants(self, required: ApiScope) -> bool:
        """True when a key of this scope may do what ``required`` allows."""
        order = list(ApiScope)
        return order.index(self) >= order.index(required)


class MaintenanceStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


#: Log levels from least to most severe; "minimum level" filters use this order.
LOG_LEVEL_ORDER: tuple[LogLevel, ...] = tuple(LogLevel)
