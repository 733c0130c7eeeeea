"""What the resource modules share: blueprint factory, path parameters, JSON responses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, ConfigDict, Field

from swarm_director.schemas.common import PositiveId
from swarm_director.store.pagination import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT, Page
from swarm_director.web.context import session
from swarm_director.web.errors import COMMON_ERROR_RESPONSES

API_PREFIX = "/api"
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]

#: ``?limit=`` bounds, from the store that enforces them.
Limit = Annotated[
    int,
    Field(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}, max {MAX_LIMIT})."),
]
Cursor = Annotated[
    str | None,
    Field(
        max_length=MAX_CURSOR_CHARS,
        description="`next_cursor` of the previous page; omit for the first.",
    ),
]


def _operation_id(*, bp_name: str = "", name: str = "", path: str = "", method: str = "") -> str:
    # The handler's name: short, stable, and unique across the API.
    return name


def blueprint(name: str, description: str, *, secured: bool = True) -> APIBlueprint:
    """A blueprint under ``/api`` whose operations document the common error responses."""
    return APIBlueprint(
        name,
        f"swarm_director.api.{name}",
        url_prefix=API_PREFIX,
        abp_tags=[Tag(name=name, description=description)],
        abp_responses=dict(COMMON_ERROR_RESPONSES),
        abp_security=SECURITY if secured else None,
        operation_id_callback=_operation_id,
    )


_QUERY_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


class QueryModel(BaseModel):
    """Base of query-string models.

    flask-openapi3 calls ``model_json_schema()`` on the query model of every request to see
    which parameters are lists; generating it costs milliseconds, so the argument-less call
    is answered from a per-class cache (the OpenAPI document passes arguments and is
    generated as usual). Unknown parameters are ignored; a query model that derives from a
    filter model (which refuses unknown fields) lists it first, so this setting wins.
    """

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:
            return super().model_json_schema(*args, **kwargs)
        schema = _QUERY_SCHEMAS.get(cls)
        if schema is None:
            schema = _QUERY_SCHEMAS[cls] = super().model_json_schema()
        return schema


class PageQuery(QueryModel):
    """Keyset pagination parameters shared by every list."""

    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


class TaskPath(BaseModel):
    task_id: PositiveId


class AgentPath(BaseModel):
    agent_id: PositiveId


def json_response(model: BaseModel, status: int = 200) -> Response:
    """``model`` serialized by pydantic (by alias, ISO 8601 timestamps) as a JSON response."""
    return Response(
        model.model_dump_json(by_alias=True), status=status, mimetype="application/json"
    )


def page_response(
    page_model: type[BaseModel], items: Iterable[Any], next_cursor: str | None
) -> Response:
    """A ``{"items": [...], "next_cursor": ...}`` response built from ORM rows."""
    page = page_model.model_validate(
        {"items": list(items), "next_cursor": next_cursor}, from_attributes=True
    )
    return json_response(page)


def listed(
    page_model: type[BaseModel],
    listing: Callable[..., Page[Any]],
    *args: Any,
    query: PageQuery,
    **kwargs: Any,
) -> Response:
    """The page that ``listing(session(), *args, **kwargs)`` reads at the query's ``limit``
    and ``cursor``, as a ``page_model`` response: the body of every list handler."""
    page = listing(session(), *args, limit=query.limit, cursor=query.cursor, **kwargs)
    return page_response(page_model, page.items, page.next_cursor)


def created_response(model: BaseModel, location: str) -> Response:
    """201 with the new resource and its URL in ``Location``."""
    response = json_response(model, 201)
    response.headers["Location"] = location
    return response


def no_content() -> Response:
    """204 with an empty body."""
    return Response(status=204)
