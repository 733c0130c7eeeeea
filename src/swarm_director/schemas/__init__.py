"""Pydantic bodies shared by the store (validation) and the REST API (requests, responses, OpenAPI).

One module per aggregate; :mod:`~swarm_director.schemas.common` holds the shared field types.
"""

from swarm_director.schemas.agents import AgentCreate, AgentOut, AgentPage, AgentUpdate
from swarm_director.schemas.common import PageOut, fields_from_pydantic
from swarm_director.schemas.conversations import (
    ConversationCreate,
    ConversationOut,
    ConversationPage,
    ConversationUpdate,
    MessageCreate,
    MessageOut,
    MessagePage,
    MessageUpdate,
    ParticipantCreate,
    ParticipantOut,
    ParticipantPage,
)
from swarm_director.schemas.drafts import (
    DraftCreate,
    DraftDiffOut,
    DraftOut,
    DraftPage,
    DraftUpdate,
)
from swarm_director.schemas.emails import (
    EmailCreate,
    EmailOut,
    EmailPage,
    EmailStatusUpdate,
    EmailUpdate,
)
from swarm_director.schemas.health import HealthOut, ReadyOut, StatsOut, TableStats
from swarm_director.schemas.logs import LogBatchOut, LogCreate, LogOut, LogPage
from swarm_director.schemas.tasks import TaskCreate, TaskOut, TaskPage, TaskUpdate

__all__ = [
    "AgentCreate",
    "AgentOut",
    "AgentPage",
    "AgentUpdate",
    "ConversationCreate",
    "ConversationOut",
    "ConversationPage",
    "ConversationUpdate",
    "DraftCreate",
    "DraftDiffOut",
    "DraftOut",
    "DraftPage",
    "DraftUpdate",
    "EmailCreate",
    "EmailOut",
    "EmailPage",
    "EmailStatusUpdate",
    "EmailUpdate",
    "HealthOut",
    "LogBatchOut",
    "LogCreate",
    "LogOut",
    "LogPage",
    "MessageCreate",
    "MessageOut",
    "MessagePage",
    "MessageUpdate",
    "PageOut",
    "ParticipantCreate",
    "ParticipantOut",
    "ParticipantPage",
    "ReadyOut",
    "StatsOut",
    "TableStats",
    "TaskCreate",
    "TaskOut",
    "TaskPage",
    "TaskUpdate",
    "fields_from_pydantic",
]
