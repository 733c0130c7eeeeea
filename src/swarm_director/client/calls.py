"""One API call as data: built once by :mod:`.operations`, sent by the sync or async transport.

Keeping the request description apart from its sending is what lets :class:`~.Client` and
:class:`~.AsyncClient` share every operation: only the two ``_send`` methods differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from swarm_director.schemas.filters import FilterModel

T_co = TypeVar("T_co", covariant=True)

#: Methods that may be repeated without changing the outcome (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

Params = dict[str, str]
Body = BaseModel | Mapping[str, Any]


class Call(Generic[T_co]):
    """A request to make and how to read its answer.

    ``model`` parses a 2xx body (None: no body, e.g. 204). ``retry`` says whether the
    transport may repeat the request after a connection error or a 429/502/503/504: true
    for idempotent methods and for requests made safe by an ``Idempotency-Key``.
    """

    __slots__ = ("content", "headers", "method", "model", "params", "path", "retry", "wait_s")

    def __init__(
        self,
        method: str,
        path: str,
        model: type[T_co] | None,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        retry: bool | None = None,
        wait_s: float = 0.0,
    ) -> None:
        self.method = method
        self.path = path
        self.model = model
        self.params = params or {}
        self.content = content
        self.headers = headers or {}
        self.retry = method in IDEMPOTENT_METHODS if retry is None else retry
        #: How long the server may hold the request on purpose (a claim waiting for work):
        #: added to the read timeout.
        self.wait_s = wait_s

    def parse(self, content: bytes) -> T_co:
        """The answer's body as ``model`` (None when the call expects no body)."""
        if self.model is None:
            return None  # type: ignore[return-value]
        if issubclass(self.model, BaseModel):
            parsed: T_co = self.model.model_validate_json(content)
            return parsed
        raise TypeError(f"cannot parse into {self.model!r}")  # pragma: no cover


def query(**values: Any) -> Params:
    """Query parameters from keyword arguments: None is left out, enums by value, booleans as
    ``true``/``false``, datetimes in ISO 8601."""
    params: Params = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, Enum):
            params[name] = str(value.value)
        elif isinstance(value, datetime):
            params[name] = value.isoformat()
        else:
            params[name] = str(value)
    return params


def filter_query(model: type[FilterModel], filters: Mapping[str, Any]) -> Params:
    """The query parameters of a listing's filters, given as keyword arguments named like the
    fields of ``model`` (sent as they are: the server answers a bad value with a 422 naming
    it). An unknown name is a TypeError, as for any unexpected keyword argument."""
    names = model.filter_names()
    unknown = [name for name in filters if name not in names]
    if unknown:
        raise TypeError(f"unexpected filter {unknown[0]!r} (filters: {', '.join(names)})")
    return query(**filters)


def _plain(body: Body) -> Any:
    # PATCH semantics: only the fields set on a model are sent (exclude_unset).
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return body


def json_body(body: Body | Sequence[Body]) -> bytes:
    """``body`` (a schema model, a mapping, or a list of them) as JSON bytes."""
    if isinstance(body, BaseModel | Mapping):
        return to_json(_plain(body))
    return to_json([_plain(item) for item in body])


JSON_HEADERS = {"Content-Type": "application/json"}
