"""``/api/agents``: the agents of the swarm and their hierarchy."""

from __future__ import annotations

from flask import Response

from swarm_director.api.common import (
    AgentPath,
    PageQuery,
    blueprint,
    created_response,
    json_response,
    listed,
    no_content,
)
from swarm_director.schemas import AgentCreate, AgentOut, AgentPage, AgentUpdate
from swarm_director.schemas.filters import AgentFilter
from swarm_director.store import agents
from swarm_director.web.context import session
from swarm_director.web.errors import ErrorResponse

bp = blueprint("agents", "Agents and their hierarchy (parent_id).")


class AgentQuery(AgentFilter, PageQuery):
    """The query of agent lists: the filters and a page."""


@bp.get("/agents", responses={200: AgentPage})
def list_agents(query: AgentQuery) -> Response:
    """List agents in id order, filtered by type, status and/or parent."""
    return listed(AgentPage, agents.list_agents, AgentFilter.of(query), query=query)


@bp.post("/agents", responses={201: AgentOut, 409: ErrorResponse})
def create_agent(body: AgentCreate) -> Response:
    """Create an agent; 409 if the name is taken."""
    agent = agents.create_agent(session(), body)
    return created_response(AgentOut.model_validate(agent), f"/api/agents/{agent.id}")


@bp.get("/agents/<int:agent_id>", responses={200: AgentOut})
def get_agent(path: AgentPath) -> Response:
    """Get one agent."""
    return json_response(AgentOut.model_validate(agents.get_agent(session(), path.agent_id)))


@bp.patch("/agents/<int:agent_id>", responses={200: AgentOut, 409: ErrorResponse})
def update_agent(path: AgentPath, body: AgentUpdate) -> Response:
    """Change an agent; 409 if the name is taken or the new parent would make a cycle."""
    agent = agents.update_agent(session(), path.agent_id, body)
    return json_response(AgentOut.model_validate(agent))


@bp.delete("/agents/<int:agent_id>", responses={204: None})
def delete_agent(path: AgentPath) -> Response:
    """Delete an agent; references to it become null."""
    agents.delete_agent(session(), path.agent_id)
    return no_content()
