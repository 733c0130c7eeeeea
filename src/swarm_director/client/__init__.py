"""HTTP client of the SwarmDirector API, for agents that hold a URL and a key — never the
database password. Imports only :mod:`swarm_director.schemas` and httpx.

* :class:`Client` / :class:`AsyncClient`: every API operation, typed with the API's schemas;
  ``list_*`` return a page, ``iter_*`` walk all pages lazily, :meth:`Client.follow_logs`
  tails logs live,
  :meth:`Client.export_logs` streams an export of the logs to a file.
* :class:`RemoteLogHandler`: Python logging to the API in batches, from a background thread.
* Errors: :class:`ClientError` and its subclasses, from the API's error shape.
"""

from swarm_director.client.async_ import AsyncClient
from swarm_director.client.errors import (
    BadRequestError,
    ClientError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ServerUnreachableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from swarm_director.client.handler import RemoteLogHandler
from swarm_director.client.log_export import ExportResult
from swarm_director.client.retry import RetryPolicy
from swarm_director.client.sync import Client

__all__ = [
    "AsyncClient",
    "BadRequestError",
    "Client",
    "ClientError",
    "ConflictError",
    "ExportResult",
    "ForbiddenError",
    "NotFoundError",
    "RemoteLogHandler",
    "RetryPolicy",
    "ServerUnreachableError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
]
