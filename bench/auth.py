"""What an API key costs per request, against the bootstrap token in the same run.

    .venv/bin/python bench/auth.py [--requests 2000] [--rounds 3]

In-process (Flask test client, a temporary SQLite file): ``GET /api/agents/1`` with the
bootstrap token (no database lookup for the credential) and with an API key (one indexed
lookup of its key id; ``last_used_at`` written at most once a minute), alternating the two.
Prints microseconds per request for each and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from flask.testing import FlaskClient

from swarm_director import create_app
from swarm_director.migrations import migrate
from swarm_director.models import ApiScope
from swarm_director.store import keys
from swarm_director.web.context import database

#: The bootstrap token of the run (16 characters at least, as the server requires).
BOOTSTRAP = "bootstrap-token-0123456789"


def _per_request_us(client: FlaskClient, token: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    for _ in range(n):
        response = client.get("/api/agents/1", headers=headers)
        assert response.status_code == 200, response.get_json()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'auth.db'}"
        app = create_app({"DATABASE_URL": url, "SWARM_API_TOKEN": BOOTSTRAP})
        try:
            migrate.upgrade(database(app).engine)
            with database(app).transaction() as session:
                key = keys.create_key(session, "bench", ApiScope.READ).token
            client = app.test_client()
            client.post(
                "/api/agents",
                json={"name": "a", "agent_type": "worker"},
                headers={"Authorization": "Bearer bootstrap-token-0123456789"},
            )
            _per_request_us(client, BOOTSTRAP, 100)  # warm-up
            _per_request_us(client, key, 100)
            token_us, key_us = [], []
            for _ in range(args.rounds):
                token_us.append(_per_request_us(client, BOOTSTRAP, args.requests))
                key_us.append(_per_request_us(client, key, args.requests))
        finally:
            database(app).dispose()
    token, keyed = statistics.median(token_us), statistics.median(key_us)
    print(f"GET /api/agents/1, median of {args.rounds} rounds of {args.requests} requests")
    print(f"  bootstrap token (baseline): {token:8.0f} us/request")
    print(f"  API key:                    {keyed:8.0f} us/request  ratio {keyed / token:.2f}")


if __name__ == "__main__":
    main()
