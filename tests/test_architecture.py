"""The one-way dependency rule, read from the import statements of every module.

``api``/``cli``/``console`` -> ``ops``/``store`` -> ``schemas``/``models`` -> ``db``; ``ops``
never imports ``store`` or ``api``; nothing below ``api`` imports Flask; ``client`` speaks
HTTP and shares only ``schemas``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "swarm_director"

#: Layer of each package/module (higher may import lower, never the reverse). Modules not
#: listed here are leaves every layer may use (config, errors, redact, durations).
LAYERS = {
    "__init__": 5,  # create_app() and the public names
    "api": 4,
    "cli": 4,
    "console": 4,
    "agent_logging": 4,  # AgentLogHandler: an agent-side entry point over the store
    "seeding": 3,
    "ops": 3,
    "store": 3,
    "log_batching": 2,  # the log handlers' shared queue and sender thread, over schemas
    "schemas": 2,
    "models": 2,
    "migrations": 1,
    "db": 1,
}
#: Pairs in the same layer that must not import each other (importer, imported).
FORBIDDEN = {("ops", "store"), ("ops", "api"), ("store", "ops"), ("schemas", "models")}
#: What the client may import, and what the client-only distribution (clients/python) ships
#: besides the import-light package root (``__version__``): these import nothing of the server.
CLIENT_SIDE = ("client", "schemas", "log_batching", "enums", "__version__")
WEB = ("flask", "flask_openapi3", "werkzeug", "jinja2")
#: Reviewed exceptions: (module, imported unit) and why.
ALLOWED = {
    # Alembic's env.py reads the models' metadata for autogenerate; it runs only under Alembic.
    ("migrations/env.py", "models"),
}


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "swarm_director" or len(parts) < 2:
        return None
    return parts[1]


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
        relative = path.relative_to(SRC)
        unit = relative.parts[0].removesuffix(".py")
        out.append((unit, path))
    return out


def violations() -> list[str]:
    problems = []
    for unit, path in _modules():
        where = path.relative_to(SRC).as_posix()
        layer = LAYERS.get(unit)
        for name in _imports(path):
            target = _unit(name)
            if name.split(".")[0] in WEB and unit not in ("api", "console", "cli", "__init__"):
                problems.append(f"{where} imports {name} (web code below api)")
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
            if (where, target) in ALLOWED:
                continue
            if layer is None:  # a leaf module (config, errors, ...) imports only leaves
                if target_layer is not None and not (unit == "config" and target == "db"):
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
    assert any("web code below api" in p for p in found)
    assert any("ops never imports store" in p for p in found)
    assert any("upward: db -> models" in p for p in found)
    assert "log_batching.py imports swarm_director.db (the client side imports no server)" in found
