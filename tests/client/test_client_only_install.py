"""The client-only distribution (clients/python): built into a fresh virtual environment, it
brings httpx and pydantic and nothing of the server, and its calls work against a real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.client.servers import TOKEN, ServeProcess
from tests.serving import ROOT

CLIENT_PROJECT = ROOT / "clients" / "python"
SERVER_ONLY = {"sqlalchemy", "flask", "psycopg", "psycopg-binary", "alembic", "gunicorn"}
SERVER_ONLY |= {"cryptography", "flask-openapi3", "pydantic-settings", "click"}


def _run(args: list[str | Path], cwd: Path, timeout: float = 600) -> str:
    # No PYTHONPATH: the environment must find swarm_director in its own site-packages only.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a new virtual environment holding only the client distribution."""
    work = tmp_path_factory.mktemp("client-only")
    # Built from a copy of the sources, so the build leaves nothing in the checkout.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "src" / "swarm_director", work / "src" / "swarm_director", ignore=ignore)
    shutil.copytree(CLIENT_PROJECT, work / "clients" / "python", ignore=ignore)
    _run([sys.executable, "-m", "venv", work / "venv"], work)
    python = work / "venv" / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", work / "clients" / "python"], work)
    return python


def _installed(python: Path) -> set[str]:
    listing = json.loads(_run([python, "-m", "pip", "list", "--format=json"], python.parent))
    return {re.sub(r"[-_.]+", "-", entry["name"]).lower() for entry in listing}


def test_the_client_environment_holds_no_server_package(client_python: Path) -> None:
    installed = _installed(client_python)
    assert {"swarm-director-client", "httpx", "pydantic"} <= installed
    assert installed & SERVER_ONLY == set()
    assert "swarm-director" not in installed
    probe = (
        "import importlib.util, json\n"
        "names = ['swarm_director.client', 'swarm_director.log_batching', 'swarm_director.store',"
        " 'swarm_director.db', 'swarm_director.api', 'swarm_director.agent_logging']\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in names}))\n"
    )
    found = json.loads(_run([client_python, "-c", probe], client_python.parent))
    assert found == {
        "swarm_director.client": True,
        "swarm_director.log_batching": True,
        "swarm_director.store": False,  # the server's modules are not shipped
        "swarm_director.db": False,
        "swarm_director.api": False,
        "swarm_director.agent_logging": False,
    }


#: Run by the client-only environment's interpreter against the test's server.
CALLS = """
import json, logging, sys
import swarm_director
from swarm_director.client import Client, NotFoundError, RemoteLogHandler

url, token = sys.argv[1], sys.argv[2]
out = {"package": swarm_director.__file__}
with Client(url, token) as client:
    agent = client.create_agent({"name": "client-only-agent", "agent_type": "worker"})
    task = client.create_task({"type": "analysis", "title": "from a client-only host"})
    out["inserted"] = client.add_logs(
        task.id, [{"agent_type": "worker", "message": f"step {i}", "agent_id": agent.id}
                  for i in range(3)]
    ).inserted
    handler = RemoteLogHandler(url, task_id=task.id, agent_type="worker", token=token)
    log = logging.getLogger("client-only")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    log.warning("through the handler", extra={"metadata": {"host": "agent"}})
    handler.close()
    out["handler"] = [handler.sent, handler.dropped, handler.rejected]
    logs = list(client.iter_task_logs(task.id, order="asc"))
    out["logs"] = [[r.message, r.log_level, r.agent_id == agent.id] for r in logs]
    out["agent"] = client.get_agent(agent.id).name
    try:
        client.get_task(999999)
    except NotFoundError as error:
        out["missing"] = [error.status, error.code]
print(json.dumps(out))
"""


def test_client_calls_work_from_the_client_only_environment(
    client_python: Path, server: ServeProcess, tmp_path: Path
) -> None:
    script = tmp_path / "calls.py"
    script.write_text(CALLS)
    out = json.loads(_run([client_python, script, server.url, TOKEN], tmp_path, timeout=120))
    assert Path(out["package"]).is_relative_to(client_python.parent.parent)  # not the checkout
    assert out["inserted"] == 3
    assert out["handler"] == [1, 0, 0]
    assert out["logs"] == [
        ["step 0", "info", True],
        ["step 1", "info", True],
        ["step 2", "info", True],
        ["through the handler", "warning", False],
    ]
    assert out["agent"] == "client-only-agent"
    assert out["missing"] == [404, "not_found"]


def test_the_client_depends_on_what_the_server_pins() -> None:
    """One set of bounds: each client dependency is the server's line, word for word."""
    client = tomllib.loads((CLIENT_PROJECT / "pyproject.toml").read_text())["project"]
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(client["dependencies"]) <= set(server["dependencies"])
    assert client["requires-python"] == server["requires-python"]
