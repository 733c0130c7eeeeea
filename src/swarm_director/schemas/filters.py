"""The filters of each listing, defined once: the API's query models derive from them, the live
tail, the console and the store take them, and the client sends their fields.

A listing's filter is a pydantic model whose fields are its filters (None: not filtered). A
new filter is a field here plus its condition in the store (``store.filtering.FilterRules``
refuses a filter model with a field it has no condition for), and an entry in the
``...Args`` TypedDict that types the client's keyword arguments (a test keeps both equal).
The API, the client's requests and the console pick the field up by themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from swarm_director.enums import (
    AgentStatus,
    AgentType,
    ConversationStatus,
    EmailStatus,
    LogLevel,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from swarm_director.schemas.common import ISOTimestamp, Name, PositiveBigId, PositiveId, SearchText
from swarm_director.schemas.history import HistoryEntity
from swarm_director.schemas.logs import AgentTypeLabel

_FILTER_NAMES: dict[type[BaseModel], tuple[str, ...]] = {}


class FilterModel(BaseModel):
    """Base of listing filters: an unknown filter is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def filter_names(cls) -> tuple[str, ...]:
        """The names of this listing's filters: the fields declared by the filter models it
        derives from (an API query model deriving from one adds paging fields, which are not
        filters)."""
        names = _FILTER_NAMES.get(cls)
        if names is None:
            filters = [k for k in cls.__mro__ if _is_filter(k)]
            declared = {name for k in filters for name in vars(k).get("__annotations__", {})}
            names = _FILTER_NAMES[cls] = tuple(n for n in cls.__pydantic_fields__ if n in declared)
        return names

    @classmethod
    def of(cls, source: BaseModel, **more: Any) -> Self:
        """This filter with the values of ``source`` (an API query, a narrower filter) for the
        fields it shares, and ``more`` (e.g. the task of a URL's path)."""
        values = {name: getattr(source, name, None) for name in cls.filter_names()}
        return cls.model_validate({**values, **more})

    def given(self) -> dict[str, Any]:
        """The filters that are set, by name."""
        found = ((name, getattr(self, name)) for name in self.filter_names())
        return {name: value for name, value in found if value is not None}

    def query_params(self) -> dict[str, Any]:
        """The filters that are set as query-string values (enums by value, ISO 8601 times)."""
        return self.model_dump(mode="json", include=set(self.given()))


def _is_filter(klass: type) -> bool:
    """A filter model: a FilterModel whose bases are all filters (not a query model that
    adds paging to one)."""
    return (
        issubclass(klass, FilterModel)
        and klass is not FilterModel
        and all(base is FilterModel or _is_filter(base) for base in klass.__bases__)
    )


# -- logs --------------------------------------------------------------------------------------


class TaskLogFilter(FilterModel):
    """The filters of one task's logs (the task is named by the caller: a URL's path)."""

    level: LogLevel | None = Field(
        default=None, description="Minimum level: `warning` gives warnings and errors."
    )
    agent_type: AgentTypeLabel | None = None
    agent_id: PositiveId | None = None
    session_id: Name | None = None
    since: ISOTimestamp | None = Field(default=None, description="Timestamp ≥ since (ISO 8601).")
    until: ISOTimestamp | None = Field(default=None, description="Timestamp < until (ISO 8601).")
    q: SearchText | None = None


class LogFilter(TaskLogFilter):
    """The filters of logs across tasks (lists and the live tail)."""

    task_id: PositiveId | None = None


class TaskLogFilterArgs(TypedDict, total=False):
    """:class:`TaskLogFilter` as the client's keyword arguments."""

    level: LogLevel | str | None
    agent_type: str | None
    agent_id: int | None
    session_id: str | None
    since: datetime | str | None
    until: datetime | str | None
    q: str | None


class LogFilterArgs(TaskLogFilterArgs, total=False):
    """:class:`LogFilter` as the client's keyword arguments."""

    task_id: int | None


# -- tasks -------------------------------------------------------------------------------------


class TaskFilter(FilterModel):
    """The filters of task lists."""

    status: TaskStatus | None = None
    type: TaskType | None = None
    user_id: Name | None = None
    assigned_agent_id: PositiveId | None = None
    parent_task_id: PositiveId | None = None
    priority: TaskPriority | None = None
    q: SearchText | None = None


class TaskFilterArgs(TypedDict, total=False):
    """:class:`TaskFilter` as the client's keyword arguments."""

    status: TaskStatus | str | None
    type: TaskType | str | None
    user_id: str | None
    assigned_agent_id: int | None
    parent_task_id: int | None
    priority: TaskPriority | str | None
    q: str | None


# -- agents and emails -------------------------------------------------------------------------


class AgentFilter(FilterModel):
    """The filters of agent lists."""

    agent_type: AgentType | None = None
    status: AgentStatus | None = None
    parent_id: PositiveId | None = None


class AgentFilterArgs(TypedDict, total=False):
    """:class:`AgentFilter` as the client's keyword arguments."""

    agent_type: AgentType | str | None
    status: AgentStatus | str | None
    parent_id: int | None


class TaskEmailFilter(FilterModel):
    """The filters of one task's emails (the task is named by the caller: a URL's path)."""

    status: EmailStatus | None = None


class EmailFilter(TaskEmailFilter):
    """The filters of email lists across tasks (``status=queued`` is the outbox)."""

    task_id: PositiveId | None = None


class TaskEmailFilterArgs(TypedDict, total=False):
    """:class:`TaskEmailFilter` as the client's keyword arguments."""

    status: EmailStatus | str | None


class EmailFilterArgs(TaskEmailFilterArgs, total=False):
    """:class:`EmailFilter` as the client's keyword arguments."""

    task_id: int | None


# -- conversations and messages ----------------------------------------------------------------


class ConversationFilter(FilterModel):
    """The filters of conversation lists."""

    status: ConversationStatus | None = None
    task_id: PositiveId | None = None


class ConversationFilterArgs(TypedDict, total=False):
    """:class:`ConversationFilter` as the client's keyword arguments."""

    status: ConversationStatus | str | None
    task_id: int | None


class MessageFilter(FilterModel):
    """The filters of a conversation's messages (the conversation is named by the path)."""

    thread_id: Name | None = None
    q: SearchText | None = None


class MessageFilterArgs(TypedDict, total=False):
    """:class:`MessageFilter` as the client's keyword arguments."""

    thread_id: str | None
    q: str | None


# -- history -----------------------------------------------------------------------------------


class HistoryFilter(FilterModel):
    """The filters of the history of changes."""

    entity: HistoryEntity | None = None
    entity_id: PositiveBigId | None = None
    actor: Name | None = Field(default=None, description="Exactly this actor.")
    action: Name | None = Field(default=None, description="create, update, delete, claim, ...")
    since: ISOTimestamp | None = Field(default=None, description="Changes at or after this.")
    until: ISOTimestamp | None = Field(default=None, description="Changes before this.")


class HistoryFilterArgs(TypedDict, total=False):
    """:class:`HistoryFilter` as the client's keyword arguments."""

    entity: str | None
    entity_id: int | None
    actor: str | None
    action: str | None
    since: datetime | str | None
    until: datetime | str | None


#: Every listing filter with the TypedDict of its client keyword arguments.
CLIENT_ARGS: dict[type[FilterModel], type[Any]] = {
    TaskLogFilter: TaskLogFilterArgs,
    LogFilter: LogFilterArgs,
    TaskFilter: TaskFilterArgs,
    AgentFilter: AgentFilterArgs,
    TaskEmailFilter: TaskEmailFilterArgs,
    EmailFilter: EmailFilterArgs,
    ConversationFilter: ConversationFilterArgs,
    MessageFilter: MessageFilterArgs,
    HistoryFilter: HistoryFilterArgs,
}
