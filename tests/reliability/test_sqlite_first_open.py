"""Several connections opening a brand-new SQLite file at once all get it, in WAL mode.

Found by the migrations test (two ``db init`` on a new file, about one run in ten): switching a
new database into WAL needs an exclusive lock, and SQLite answers "database is locked" at once
— without waiting out the busy timeout — when two connections try it together. Each round
here opens one new file from three connections released together; before the fix about one
connection in twelve failed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from swarm_director.db import make_engine

ROUNDS = 60
CONNECTIONS = 3


def test_connections_racing_to_open_a_new_file_all_succeed(tmp_path: Path) -> None:
    failures: list[str] = []
    modes: set[str] = set()
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'new{round_}.db'}"
        barrier = threading.Barrier(CONNECTIONS)

        def open_and_write(url: str = url, barrier: threading.Barrier = barrier) -> None:
            engine = make_engine(url, busy_timeout_s=10)
            try:
                barrier.wait(timeout=10)
                with engine.begin() as conn:
                    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                    conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                    modes.add(str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()))
            except Exception as error:
                failures.append(str(error).splitlines()[0])
            finally:
                engine.dispose()

        threads = [threading.Thread(target=open_and_write) for _ in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, f"{len(failures)} connections failed, e.g. {failures[0]}"
    assert modes == {"wal"}
