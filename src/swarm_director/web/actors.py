"""Who each request acts as, for the history: the authenticated key's name (``bootstrap`` for
the token, ``anonymous`` when the service runs without authentication), and a request id —
the client's ``X-Request-ID`` when it is a short plain token, else a new one — echoed in the
response's ``X-Request-ID``."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from swarm_director.db.actor import begin_acting, end_acting

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _begin() -> None:
    given = request.headers.get("X-Request-ID", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    principal = g.get("principal")
    name = principal.name if principal is not None else "anonymous"
    g._sd_request_id = request_id
    g._sd_acting = begin_acting(name, request_id)


def _echo(response: Response) -> Response:
    request_id = g.get("_sd_request_id")
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
    return response


def _end(_error: BaseException | None) -> None:
    token = g.pop("_sd_acting", None)
    if token is not None:
        end_acting(token)


def init_app(app: Flask) -> None:
    """Set the actor after the API's guards authenticated the request; undo it when it ends."""
    app.before_request(_begin)
    app.after_request(_echo)
    app.teardown_request(_end)
