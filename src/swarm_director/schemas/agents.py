"""Request and response bodies for agents."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from swarm_director.enums import AgentStatus, AgentType
from swarm_director.schemas.common import (
    InputModel,
    JSONObject,
    Name,
    NoNul,
    OutputModel,
    PageOut,
    Patch,
    PositiveId,
    ShortText,
    StoredJSON,
)

Capability = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
Capabilities = Annotated[list[Capability], Field(max_length=100)]
# Strict: a JSON number only (lax mode would take true as 1.0 and "0" as 0.0).
ResponseTime = Annotated[
    float, Field(ge=0, strict=True, description="Mean response time in seconds.")
]


class AgentCreate(InputModel):
    """A new agent. ``name`` is unique across the swarm."""

    name: Name
    agent_type: AgentType
    status: AgentStatus = AgentStatus.IDLE
    description: ShortText | None = None
    capabilities: Capabilities = Field(default_factory=list)
    config: JSONObject = Field(default_factory=dict)
    parent_id: PositiveId | None = Field(default=None, description="Supervising agent.")
    average_response_time: ResponseTime | None = None


class AgentUpdate(InputModel):
    """Fields of an agent that may change; counters are kept by the store and not writable."""

    name: Patch[Name] = None
    agent_type: Patch[AgentType] = None
    status: Patch[AgentStatus] = None
    description: ShortText | None = None
    capabilities: Patch[Capabilities] = None
    config: Patch[JSONObject] = None
    parent_id: PositiveId | None = Field(default=None, description="null detaches the agent.")
    average_response_time: ResponseTime | None = None


class AgentOut(OutputModel):
    """An agent as stored, with its conversation statistics."""

    id: int
    name: str
    agent_type: AgentType
    status: AgentStatus
    description: str | None
    capabilities: list[str]
    config: StoredJSON
    parent_id: int | None
    total_conversations: int
    total_messages_sent: int
    average_response_time: float | None
    last_conversation_at: AwareDatetime | None
    last_seen_at: AwareDatetime | None = Field(
        default=None, description="Last claim or lease heartbeat of the work queue."
    )
    created_at: AwareDatetime
    updated_at: AwareDatetime


class AgentPage(PageOut[AgentOut]):
    """A page of agents."""
