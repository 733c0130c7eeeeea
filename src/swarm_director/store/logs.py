"""Agent logs: single and bulk appends, and keyset-paginated queries.

Bulk ingest (:func:`add_logs`) is the hot path of the service. It validates the whole batch
with one pydantic call and hands the rows to :mod:`.log_ingest`, which writes them with one
driver call: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, Row, select
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.enums import LOG_LEVEL_ORDER
from swarm_director.errors import ConflictError, ValidationError
from swarm_director.models import Agent, AgentLog, LogLevel, Task
from swarm_director.models.fulltext import LOGS
from swarm_director.schemas.common import fields_from_pydantic
from swarm_director.schemas.filters import LogFilter
from swarm_director.schemas.logs import LogCreate, LogRow
from swarm_director.store import idempotency
from swarm_director.store._common import (
    attribute_columns,
    core_connection,
    get_or_404,
    require_ref,
    validated,
)
from swarm_director.store.filtering import SEARCHED, FilterRules
from swarm_director.store.log_ingest import WriteConflict, encode_documents, write_rows
from swarm_director.store.pagination import (
    DEFAULT_LIMIT,
    Ordering,
    Page,
    ordering_for,
    paginate_rows,
)
from swarm_director.store.search_pages import search_page

_NEWEST_FIRST = Ordering("logs", (AgentLog.timestamp, AgentLog.id), descending=True)
_OLDEST_FIRST = Ordering("logs", (AgentLog.timestamp, AgentLog.id), descending=False)
_LOG_COLUMNS = attribute_columns(AgentLog)
#: What :func:`list_logs` returns: a row with AgentLog's attributes.
LogRecord = Row[Any]
_ROWS = TypeAdapter(list[LogRow])
_ID_CHUNK = 500


def _check_agents(session: Session, rows: Sequence[LogRow]) -> None:
    """ValidationError naming the first row whose agent_id does not exist."""
    wanted = {agent_id for row in rows if (agent_id := row.get("agent_id")) is not None}
    if not wanted:
        return
    ids = sorted(wanted)
    found: set[int] = set()
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        found.update(session.scalars(select(Agent.id).where(Agent.id.in_(chunk))))
    if missing := wanted - found:
        index, agent_id = next(
            (i, row.get("agent_id")) for i, row in enumerate(rows) if row.get("agent_id") in missing
        )
        field, problem = f"[{index}].agent_id", f"agent {agent_id} does not exist"
        raise ValidationError(
            f"invalid log record at {field}: {problem}", details={"fields": {field: problem}}
        )


def add_log(session: Session, task_id: int, data: LogCreate | Mapping[str, Any]) -> AgentLog:
    """Appends one log record to a task and returns it (flushed, with its id).

    Raises NotFoundError (task), ValidationError (bad field or missing agent).
    """
    body = validated(LogCreate, data, "log record")
    get_or_404(session, Task, task_id, "task")
    if body.agent_id is not None:
        require_ref(session, Agent, body.agent_id, "agent_id", "agent")
    fields = body.model_dump(exclude={"metadata", "timestamp"})
    log = AgentLog(task_id=task_id, timestamp=body.timestamp or utcnow(), **fields)
    if body.metadata is not None:  # an absent document is SQL NULL, not JSON null
        log.meta = body.metadata
    session.add(log)
    session.flush()
    return log


def add_logs(
    session: Session,
    task_id: int,
    rows: Sequence[LogCreate | Mapping[str, Any]],
    *,
    idempotency_key: str | None = None,
) -> int:
    """Appends a batch of log records to a task, all or nothing; returns how many were stored.

    Rows are LogCreate objects or mappings of its fields. Rows without a timestamp get the
    same one (the time of the call); their ids keep the order of the batch. Raises NotFoundError
    (task), ValidationError naming the row and field (``details["fields"]`` like
    ``{"[17].log_level": "..."}``) before anything is written.

    With ``idempotency_key``, a retry of the same batch for the same task (e.g. after a client
    timeout) stores nothing and returns the first call's count; the same key with a different
    batch raises ConflictError.
    """
    try:
        # LogCreate objects were validated when made; as dicts they pass again cheaply.
        batch = _ROWS.validate_python([dict(r) if isinstance(r, LogCreate) else r for r in rows])
    except PydanticValidationError as exc:
        fields = fields_from_pydantic(exc)
        first = next(iter(fields))
        raise ValidationError(
            f"invalid log record at {first}: {fields[first]}", details={"fields": fields}
        ) from None
    documents = encode_documents(batch)
    session.flush()
    get_or_404(session, Task, task_id, "task")
    if idempotency_key is None:
        return _insert_batch(session, task_id, batch, documents)
    result, _replayed = idempotency.run_once(
        session,
        f"logs:task:{task_id}",
        idempotency_key,
        batch,
        lambda: {"inserted": _insert_batch(session, task_id, batch, documents)},
    )
    return int(result["inserted"])


def _insert_batch(
    session: Session, task_id: int, batch: list[LogRow], documents: list[str | None]
) -> int:
    """Write validated rows in one driver call (COPY or executemany); returns how many."""
    if not batch:
        return 0
    _check_agents(session, batch)
    try:
        return write_rows(session.connection(), task_id, batch, documents)
    except WriteConflict:
        # Only a concurrent delete of the task or an agent gets here; both were checked above.
        raise ConflictError(
            "the task or an agent of the batch was deleted meanwhile; nothing was stored"
        ) from None


def list_logs(
    source: Session | Connection,
    log_filter: LogFilter | Mapping[str, Any] | None = None,
    *,
    order: Literal["asc", "desc"] = "desc",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[LogRecord]:
    """A page of log records ordered by (timestamp, id), newest first unless ``order="asc"``.

    The items are read-only rows with the attributes of :class:`AgentLog` (``meta`` included),
    not ORM objects: listing is the service's hottest read, run as a Core statement on
    ``source`` (a session's connection, or a bare read connection, which is cheaper still).

    ``log_filter`` (:class:`~swarm_director.schemas.filters.LogFilter`, or a mapping of its
    fields): a task, a minimum level (``warning`` gives warnings and errors), agent type, agent,
    session, a time window ``since <= timestamp < until``, and ``q``, a full-text search of the
    message (words and "quoted phrases", see :mod:`swarm_director.store.search`).
    Raises ValidationError for a bad filter, order, limit, cursor or query.
    """
    ordering = ordering_for(order, asc=_OLDEST_FIRST, desc=_NEWEST_FIRST)
    wanted = LOG_FILTERS.parse(log_filter)
    stmt = LOG_FILTERS.apply(select(*_LOG_COLUMNS), wanted)
    connection = core_connection(source)
    if wanted.q is not None:
        return search_page(
            connection,
            stmt,
            ordering,
            LOGS,
            AgentLog.id,
            wanted.q,
            limit=limit,
            cursor=cursor,
            fetch=lambda page: connection.execute(page).all(),
        )
    return paginate_rows(connection, stmt, ordering, limit=limit, cursor=cursor)


def _at_least(column: Any, level: LogLevel) -> Any:
    return column.in_(LOG_LEVEL_ORDER[LOG_LEVEL_ORDER.index(LogLevel(level)) :])


#: The conditions of :class:`LogFilter` (shared with the live tail in
#: :mod:`swarm_director.store.log_stream`).
LOG_FILTERS = FilterRules(
    LogFilter,
    task_id=AgentLog.task_id,
    level=(AgentLog.log_level, _at_least),
    agent_type=AgentLog.agent_type,
    agent_id=AgentLog.agent_id,
    session_id=AgentLog.session_id,
    since=(AgentLog.timestamp, operator.ge),
    until=(AgentLog.timestamp, operator.lt),
    q=SEARCHED,
)


def log_columns() -> tuple[Any, ...]:
    """The columns a log read selects (rows with AgentLog's attributes, ``meta`` included)."""
    return _LOG_COLUMNS
