"""The ORM models, one module per aggregate. Importing this package registers every table."""

from swarm_director.models import fulltext  # noqa: F401  (full-text DDL on the tables)
from swarm_director.models.agent import Agent
from swarm_director.models.conversation import Conversation, ConversationParticipant, Message
from swarm_director.models.draft import Draft
from swarm_director.models.email import EMAIL_TRANSITIONS, EmailMessage
from swarm_director.models.enums import (
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
from swarm_director.models.idempotency import IdempotencyKey
from swarm_director.models.log import AgentLog
from swarm_director.models.maintenance import MaintenanceEvent
from swarm_director.models.task import TASK_TRANSITIONS, Task

__all__ = [
    "EMAIL_TRANSITIONS",
    "TASK_TRANSITIONS",
    "Agent",
    "AgentLog",
    "AgentStatus",
    "AgentType",
    "Conversation",
    "ConversationParticipant",
    "ConversationStatus",
    "Draft",
    "DraftStatus",
    "EmailMessage",
    "EmailStatus",
    "IdempotencyKey",
    "LogLevel",
    "MaintenanceEvent",
    "MaintenanceOperation",
    "MaintenanceStatus",
    "Message",
    "MessageType",
    "Task",
    "TaskPriority",
    "TaskStatus",
    "TaskType",
]
