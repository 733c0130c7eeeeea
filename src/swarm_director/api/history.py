"""``GET /api/history`` across the swarm and each entity's own history."""

from __future__ import annotations

from typing import Literal

from flask import Response, g
from pydantic import BaseModel, Field

from swarm_director.api.common import AgentPath, PageQuery, TaskPath, blueprint, page_response
from swarm_director.api.conversations import ConversationPath
from swarm_director.api.drafts import DraftPath
from swarm_director.api.emails import EmailPath
from swarm_director.enums import ApiScope
from swarm_director.schemas.filters import HistoryFilter
from swarm_director.schemas.history import HistoryEntity, HistoryPage
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


def _entity_route(entity: HistoryEntity, path: type[BaseModel], rule: str, doc: str) -> None:
    """``GET /api/<rule>/history``: the history of one entity, oldest first. One handler per
    entity, so that each route keeps its own path model (``task_id``, ...) in the document."""
    (id_name,) = path.model_fields

    def handler(path: BaseModel, query: EntityHistoryQuery) -> Response:
        return _page(query, HistoryFilter(entity=entity, entity_id=getattr(path, id_name)))

    handler.__annotations__ = {"path": path, "query": EntityHistoryQuery, "return": Response}
    handler.__name__ = handler.__qualname__ = f"list_{entity}_history"
    handler.__doc__ = doc
    bp.get(f"/{rule}/<int:{id_name}>/history", responses={200: HistoryPage})(handler)


for _route in (
    ("task", TaskPath, "tasks", "How the task got where it is: every change, oldest first."),
    ("agent", AgentPath, "agents", "Every change of the agent, oldest first."),
    ("draft", DraftPath, "drafts", "Every change of the draft, oldest first."),
    ("email", EmailPath, "emails", "Every change of the email, oldest first."),
    (
        "conversation",
        ConversationPath,
        "conversations",
        "Every change of the conversation, oldest first.",
    ),
):
    _entity_route(*_route)
