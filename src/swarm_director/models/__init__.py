"""The ORM models, one module per aggregate. Importing this package registers every table."""

from swarm_director.enums import (
    AgentStatus,
    AgentType,
    ApiScope,
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

# recording: registers the history's recording of every change on every Session; fulltext:
# the search tables and indexes on the models' tables, so that a schema built with
# ``create_all`` gets them as a migrated one does. Each imports the models it needs.
from swarm_director.models import fulltext, recording
from swarm_director.models.agent import Agent
from swarm_director.models.api_key import ApiKey
from swarm_director.models.attempt import TaskAttempt
from swarm_director.models.attempt_count import AttemptCountHour
from swarm_director.models.attempt_digest import AttemptDigest
from swarm_director.models.console_session import ConsoleSession
from swarm_director.models.conversation import Conversation, ConversationParticipant, Message
from swarm_director.models.draft import Draft
from swarm_director.models.email import EMAIL_TRANSITIONS, EmailMessage
from swarm_director.models.error_group import ErrorGroupHour
from swarm_director.models.history import HistoryEntry
from swarm_director.models.idempotency import IdempotencyKey
from swarm_director.models.log import AgentLog
from swarm_director.models.maintenance import MaintenanceEvent
from swarm_director.models.rollup import LogVolumeHour
from swarm_director.models.task import TASK_TRANSITIONS, Task
from swarm_director.models.timing import StatementTiming

__all__ = [
    "EMAIL_TRANSITIONS",
    "TASK_TRANSITIONS",
    "Agent",
    "AgentLog",
    "AgentStatus",
    "AgentType",
    "ApiKey",
    "ApiScope",
    "AttemptCountHour",
    "AttemptDigest",
    "ConsoleSession",
    "Conversation",
    "ConversationParticipant",
    "ConversationStatus",
    "Draft",
    "DraftStatus",
    "EmailMessage",
    "EmailStatus",
    "ErrorGroupHour",
    "HistoryEntry",
    "IdempotencyKey",
    "LogLevel",
    "LogVolumeHour",
    "MaintenanceEvent",
    "MaintenanceOperation",
    "MaintenanceStatus",
    "Message",
    "MessageType",
    "StatementTiming",
    "Task",
    "TaskAttempt",
    "TaskPriority",
    "TaskStatus",
    "TaskType",
    "fulltext",
    "recording",
]
