"""What an export is: the kinds of rows, the file formats, each kind's filter and the fields
of its rows (the fields of the API's item model, in its order)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from swarm_director.schemas.common import ISOTimestamp
from swarm_director.schemas.filters import FilterModel, HistoryFilter, LogFilter, TaskFilter
from swarm_director.schemas.history import HistoryOut
from swarm_director.schemas.logs import LogOut
from swarm_director.schemas.tasks import TaskOut


class ExportKind(StrEnum):
    """What is exported."""

    LOGS = "logs"
    TASKS = "tasks"
    HISTORY = "history"


class ExportFormat(StrEnum):
    """How rows are written: JSON lines, CSV (PostgreSQL's CSV rules), or Parquet."""

    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


class TaskExportFilter(TaskFilter):
    """The filters of a task export: the task list's, and a window of creation times."""

    since: ISOTimestamp | None = Field(default=None, description="Created at or after this.")
    until: ISOTimestamp | None = Field(default=None, description="Created before this.")


#: The filter model of each kind (logs and history have their lists' filters as they are).
FILTERS: dict[ExportKind, type[FilterModel]] = {
    ExportKind.LOGS: LogFilter,
    ExportKind.TASKS: TaskExportFilter,
    ExportKind.HISTORY: HistoryFilter,
}
#: The item model whose fields, in order, are an exported row's (columns, JSON keys).
ITEMS: dict[ExportKind, type[BaseModel]] = {
    ExportKind.LOGS: LogOut,
    ExportKind.TASKS: TaskOut,
    ExportKind.HISTORY: HistoryOut,
}


class FieldKind(StrEnum):
    """How a field is written: a number, text, a UTC timestamp (ISO 8601 text ending in
    ``Z``) or a JSON document (nested in JSON lines, its text elsewhere)."""

    INTEGER = "integer"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    JSON = "json"


class ExportField(BaseModel):
    """One field of an exported row."""

    name: str
    kind: FieldKind
