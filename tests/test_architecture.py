"""The one-way dependency rule, read from the import statements of every module.

``cli`` and the app factory (``web.app``) -> ``api``/``console`` -> ``web`` -> ``ops``/``store``
-> ``migrations`` -> ``schemas``/``models`` -> ``db``; ``api`` and ``console`` never import
each other (what both need is in ``web``); ``ops`` never imports ``store``; nothing below the
web surfaces imports Flask; ``client`` speaks HTTP and shares only ``schemas``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "swarm_director"

#: Layer of each package/module (higher may import lower, never the reverse). Modules not
#: listed here are leaves every layer may use (config, errors, redact, durations).
LAYERS = {
    "__init__": 7,  # create_app() and the public names
    "cli": 6,
    "web.app": 6,  # the app factory: the one module that imports both web surfaces
    "api": 5,
    "console": 5,
    "web": 4,  # what the web surfaces share: request context, errors, authentication
    "agent_logging": 4,  # AgentLogHandler: an agent-side entry point over the store
    "seeding": 3,
    "ops": 3,
    "store": 3,
    "migrations": 2,  # above models: Alembic's env.py reads their metadata
    "log_batching": 1,  # the log handlers' shared queue and sender thread, over schemas
    "schemas": 1,
    "models": 1,
    "db": 0,
}
#: Modules that stand on a layer of their own, apart from the rest of their package.
OWN_LAYER = {"web.app"}
#: Pairs in the same layer that must not import each other (importer, imported).
FORBIDDEN = {
    ("api", "console"),
    ("console", "api"),
    ("ops", "store"),
    ("store", "ops"),
    ("schemas", "models"),
}
#: What the client may import, and what the client-only distribution (clients/python) ships
#: besides the import-light package root (``__version__``): these import nothing of the server.
CLIENT_SIDE = ("client", "schemas", "log_batching", "enums", "__version__")
WEB = ("flask", "flask_openapi3", "werkzeug", "jinja2")
#: Who may import the web libraries.
WEB_SIDE = ("api", "console", "web", "web.app", "cli", "__init__")


def _unit_of(parts: list[str]) -> str:
    own = ".".join(parts[:2])
    return own if own in OWN_LAYER else parts[0]


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "swarm_director" or len(parts) < 2:
        return None
    return _unit_of(parts[1:])


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        out.append((_unit_of(list(relative.parts)), path))
    return out


def violations() -> list[str]:
    problems = []
    for unit, path in _modules():
        where = path.relative_to(SRC).as_posix()
        layer = LAYERS.get(unit)
        for name in _imports(path):
            target = _unit(name)
            if name.split(".")[0] in WEB and unit not in WEB_SIDE:
                problems.append(f"{where} imports {name} (web code outside the web packages)")
            if target is None or target == unit:
                continue
            if unit in CLIENT_SIDE:
                if target not in CLIENT_SIDE:
                    problems.append(f"{where} imports {name} (the client side imports no server)")
                if unit == "client":
                    continue
            if target == "client" and unit != "cli":
                problems.append(f"{where} imports {name} (nothing depends on the client)")
            target_layer = LAYERS.get(target)
            if layer is None:  # a leaf module (config, errors, ...) imports only leaves
                if target_layer is not None:
                    problems.append(f"{where} imports {name} (a leaf module imports a layer)")
                continue
            if target_layer is not None and target_layer > layer:
                problems.append(f"{where} imports {name} (upward: {unit} -> {target})")
            if (unit, target) in FORBIDDEN:
                problems.append(f"{where} imports {name} ({unit} never imports {target})")
    return problems


def test_dependencies_point_one_way() -> None:
    assert violations() == []


def test_the_rule_catches_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "swarm_director"
    (fake / "ops").mkdir(parents=True)
    (fake / "ops" / "bad.py").write_text(
        "from flask import request\nfrom swarm_director.store import tasks\n"
    )
    (fake / "db").mkdir()
    (fake / "db" / "bad.py").write_text("from swarm_director.models import Task\n")
    (fake / "log_batching.py").write_text("from swarm_director.db import Database\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", fake)
    found = violations()
    assert any("web code outside the web packages" in p for p in found)
    assert any("ops never imports store" in p for p in found)
    assert any("upward: db -> models" in p for p in found)
    assert "log_batching.py imports swarm_director.db (the client side imports no server)" in found


def _fake_tree(root: Path, files: dict[str, str]) -> Path:
    fake = root / "swarm_director"
    for name, text in files.items():
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_text(text)
    return fake


def test_the_web_surfaces_never_import_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_tree(
        tmp_path,
        {
            "api/tasks.py": "from swarm_director.console.common import render\n",
            "console/pages.py": "from swarm_director.api import errors\n",
            "web/context.py": "from swarm_director.api.common import blueprint\n",
            "web/errors.py": "from swarm_director.web.app import create_app\n",
            # What the layout allows: the factory over both surfaces, both over web.
            "web/app.py": "from swarm_director import api, console\n",
            "api/logs.py": "from swarm_director.web.context import session\n",
            "console/ops_page.py": "from swarm_director.web import auth\n",
            "cli/serve.py": "from swarm_director.web.app import create_app\n",
        },
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", fake)
    assert sorted(violations()) == [
        "api/tasks.py imports swarm_director.console.common (api never imports console)",
        "api/tasks.py imports swarm_director.console.common.render (api never imports console)",
        "console/pages.py imports swarm_director.api (console never imports api)",
        "console/pages.py imports swarm_director.api.errors (console never imports api)",
        "web/context.py imports swarm_director.api.common (upward: web -> api)",
        "web/context.py imports swarm_director.api.common.blueprint (upward: web -> api)",
        "web/errors.py imports swarm_director.web.app (upward: web -> web.app)",
        "web/errors.py imports swarm_director.web.app.create_app (upward: web -> web.app)",
    ]
