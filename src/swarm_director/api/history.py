"""``GET /api/history`` across the swarm and each entity's own history."""

from __future__ import annotations

from typing import Literal

from flask import Response, g
from pydantic import Field

from swarm_director.api.common import AgentPath, PageQuery, TaskPath, blueprint, page_response
from swarm_director.api.conversations import ConversationPath
from swarm_director.api.drafts import DraftPath
from swarm_director.api.emails import EmailPath
from swarm_director.enums import ApiScope
from swarm_director.schemas.filters import HistoryFilter
from swarm_director.schemas.history import HistoryPage
from swarm_director.store import history
from swarm_director.web.context import connection

bp = blueprint("history", "The recorded history of every change, with who made it.")


class HistoryQuery(HistoryFilter, PageQuery):
    """The query of the swarm's history: the filters, an order and a page."""

    order: Literal["asc", "desc"] = Field(default="desc", description="`desc`: newest first.")


class EntityHistoryQuery(PageQuery):
    order: Literal["asc", "desc"] = Field(default="asc", description="`asc`: oldest first.")


def _hidden() -> frozenset[str]:
    # API keys' history (names, scopes, expiry) is for admin keys, like key management.
    principal = g.get("principal")
    if principal is None or principal.scope.grants(ApiScope.ADMIN):
        return frozenset()
    return history.ADMIN_ENTITIES


def _page(query: HistoryQuery | EntityHistoryQuery, history_filter: HistoryFilter) -> Response:
    page = history.list_history(
        connection(),
        history_filter,
        hidden=_hidden(),
        order=query.order,
        limit=query.limit,
        cursor=query.cursor,
    )
    return page_response(HistoryPage, page.items, page.next_cursor)


@bp.get("/history", responses={200: HistoryPage})
def list_history(query: HistoryQuery) -> Response:
    """The swarm's changes, newest first, filtered by entity, actor, action and time. API
    keys' changes are listed only to admin keys."""
    return _page(query, query)


@bp.get("/tasks/<int:task_id>/history", responses={200: HistoryPage})
def list_task_history(path: TaskPath, query: EntityHistoryQuery) -> Response:
    """How the task got where it is: every change, oldest first."""
    return _page(query, HistoryFilter(entity="task", entity_id=path.task_id))


@bp.get("/agents/<int:agent_id>/history", responses={200: HistoryPage})
def list_agent_history(path: AgentPath, query: EntityHistoryQuery) -> Response:
    """Every change of the agent, oldest first."""
    return _page(query, HistoryFilter(entity="agent", entity_id=path.agent_id))


@bp.get("/drafts/<int:draft_id>/history", responses={200: HistoryPage})
def list_draft_history(path: DraftPath, query: EntityHistoryQuery) -> Response:
    """Every change of the draft, oldest first."""
    return _page(query, HistoryFilter(entity="draft", entity_id=path.draft_id))


@bp.get("/emails/<int:email_id>/history", responses={200: HistoryPage})
def list_email_history(path: EmailPath, query: EntityHistoryQuery) -> Response:
    """Every change of the email, oldest first."""
    return _page(query, HistoryFilter(entity="email", entity_id=path.email_id))


@bp.get("/conversations/<int:conversation_id>/history", responses={200: HistoryPage})
def list_conversation_history(path: ConversationPath, query: EntityHistoryQuery) -> Response:
    """Every change of the conversation, oldest first."""
    return _page(query, HistoryFilter(entity="conversation", entity_id=path.conversation_id))
