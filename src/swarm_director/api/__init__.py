"""The REST API: an OpenAPI-described Flask app, one blueprint per resource.

Handlers are thin: they take validated pydantic models from flask-openapi3, call the store
with the request's session (:func:`swarm_director.api.context.session`) and serialize the
result. Errors of every kind become one JSON shape in :mod:`swarm_director.api.errors`.
"""

from swarm_director.api.app import create_app

__all__ = ["create_app"]
