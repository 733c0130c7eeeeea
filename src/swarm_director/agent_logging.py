"""A bridge from Python's :mod:`logging` to ``agent_logs``, for processes that own the database.

An agent attaches :class:`AgentLogHandler` to its logger and logs as usual; the task id, agent
type, agent id and session id come from the handler's defaults or from the record's ``extra``::

    handler = AgentLogHandler("sqlite:///database/data/swarm_director_dev.db",
                              agent_type="email_agent", session_id="run-42")
    log = logging.getLogger("email_agent")
    log.addHandler(handler)
    log.info("draft sent for review", extra={"task_id": 7, "metadata": {"draft": 3}})
    ...
    handler.close()   # writes what is still buffered

The queue, the writer thread, flush, close and drop reports are
:class:`swarm_director.log_batching.BatchingLogHandler`'s, shared with
``client.RemoteLogHandler``; this module only says how a batch leaves: through
:func:`swarm_director.store.logs.add_logs`, one transaction per task and batch. A locked, busy
or unreachable database means "write it again later"; the agent is never blocked and never
sees an exception.
"""

from __future__ import annotations

from typing import Unpack

from sqlalchemy import exc as sa_exc

from swarm_director.config import load_settings
from swarm_director.db import Database, make_engine
from swarm_director.errors import DatabaseUnavailableError, NotFoundError, SwarmError
from swarm_director.log_batching import (
    Batch,
    BatchingLogHandler,
    BatchOptions,
    Refused,
    SendLater,
)
from swarm_director.schemas.log_records import RecordDefaults
from swarm_director.store import logs


def _is_transient(error: BaseException) -> bool:
    """Errors worth retrying: the database is locked, restarting or unreachable."""
    if isinstance(error, DatabaseUnavailableError | sa_exc.OperationalError):
        return True
    if isinstance(error, sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


class AgentLogHandler(BatchingLogHandler):
    """A :class:`logging.Handler` that stores records as agent logs, in batches.

    ``database`` is a :class:`~swarm_director.db.Database` (the caller keeps ownership), a
    database URL, or None for the configured database (``DATABASE_URL`` or the embedded file).
    ``task_id``, ``agent_type``, ``agent_id`` and ``session_id`` are defaults; a record's
    ``extra`` of the same names wins, and ``extra={"metadata": {...}}`` is stored with the row
    (next to the logger name, module, function and line). ``agent_type`` defaults to the
    logger's name.

    At most ``max_buffer`` rows are kept while the database is unavailable; the other options
    (``level``, ``batch_size``, ``flush_interval``, ``flush_timeout``, ``close_timeout``,
    ``max_backoff``) are :class:`~swarm_director.log_batching.BatchingLogHandler`'s, and so
    are the counters: :attr:`sent` (``written`` is its former name), :attr:`dropped`,
    :attr:`rejected`, :attr:`skipped`, :attr:`last_error`, :attr:`pending`.
    """

    destination = "store"
    delivered = "stored"
    kind = "database"

    def __init__(
        self,
        database: Database | str | None = None,
        *,
        task_id: int | None = None,
        agent_type: str | None = None,
        agent_id: int | None = None,
        session_id: str | None = None,
        max_buffer: int = 100_000,
        **options: Unpack[BatchOptions],
    ) -> None:
        if isinstance(database, Database):
            self._database, self._owns_database = database, False
        elif isinstance(database, str):
            self._database, self._owns_database = Database(make_engine(database)), True
        else:
            self._database = Database.from_settings(load_settings())
            self._owns_database = True
        super().__init__(
            RecordDefaults(task_id, agent_type, agent_id, session_id),
            max_queue=max_buffer,
            **options,
        )

    @property
    def written(self) -> int:
        """Rows stored so far: the former name of :attr:`sent`."""
        return self.sent

    def _send(self, batch: Batch) -> int:
        try:
            with self._database.transaction() as session:
                return logs.add_logs(session, batch.task_id, batch.rows)
        except NotFoundError as error:  # the task is gone: none of its rows can be stored
            raise Refused(error.message, split=False) from error
        except Exception as error:
            if _is_transient(error):
                first_line = (str(error).splitlines() or [""])[0]
                raise SendLater(f"{type(error).__name__}: {first_line}") from error
            # A refused row (an unknown agent, a field out of range) sinks its whole batch.
            why = error.message if isinstance(error, SwarmError) else type(error).__name__
            raise Refused(why) from error

    def _release(self) -> None:
        if self._owns_database:
            self._database.dispose()
