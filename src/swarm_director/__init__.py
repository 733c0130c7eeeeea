"""SwarmDirector store: the persistence service of the SwarmDirector multi-agent system.

The data layer (``swarm_director.db``, ``.models``, ``.store``) works without Flask;
:func:`create_app` builds the HTTP API and the web console, and imports Flask only when
called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask application serving the REST API and the web console (see
    :func:`swarm_director.web.app.create_app`)."""
    from swarm_director.web.app import create_app as _create_app

    return _create_app(config)


__all__ = ["__version__", "create_app"]
