"""The REST API under ``/api``: an OpenAPI-described surface, one blueprint per resource.

Handlers are thin: they take validated pydantic models from flask-openapi3, call the store
with the request's session (:func:`swarm_director.web.context.session`) and serialize the
result. Errors of every kind become one JSON shape in :mod:`swarm_director.web.errors`. The
app itself is built by :func:`swarm_director.web.app.create_app`, which calls :func:`init_app`.
"""

from __future__ import annotations

from flask import Response, request
from flask_openapi3.openapi import OpenAPI

from swarm_director.api import document, guards
from swarm_director.web.auth import normal_path


def init_app(app: OpenAPI) -> None:
    """Serve the API on ``app``: its guards (credentials, body limits), every resource's
    blueprint, and the OpenAPI document at ``/api/openapi.json``."""
    guards.init_app(app)
    _register_resources(app)
    document.init_app(app)
    app.after_request(_no_store)


def _no_store(response: Response) -> Response:
    # API answers are per caller and often secret: no cache keeps them (streams say no-cache).
    path = normal_path(request.path)
    if path == "/api" or path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _register_resources(app: OpenAPI) -> None:
    from swarm_director.api import (
        agents,
        conversations,
        drafts,
        emails,
        export,
        health,
        history,
        logs,
        queue,
        reports,
        streams,
        tasks,
    )

    streams.init_app(app)
    export.init_app(app)
    queue.init_app(app)
    # queue before tasks: /tasks/claim and /tasks/dead are not task ids
    modules = (
        health,
        agents,
        queue,
        tasks,
        logs,
        streams,
        drafts,
        emails,
        conversations,
        history,
        reports,
        export,
    )
    for module in modules:
        app.register_api(module.bp)
    app.register_api(health.admin)


__all__ = ["init_app"]
