"""A separate writer process for the ops tests: inserts logs one per transaction.

``python -m tests.ops.writer URL TASK_ID PROGRESS_FILE SECONDS`` appends each committed id
and how long its transaction took (seconds, from asking for the write lock to the commit) to
PROGRESS_FILE, flushed after the commit, so the test knows what was committed when.
It stops after SECONDS or when PROGRESS_FILE + ".stop" appears.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import sqlalchemy as sa

from swarm_director.db import make_engine, utcnow
from swarm_director.models import AgentLog
from swarm_director.models.rollup import count_inserted


def main(url: str, task_id: int, progress: Path, seconds: float) -> None:
    engine = make_engine(url)
    stop = progress.with_name(progress.name + ".stop")
    deadline = time.monotonic() + seconds
    with progress.open("a", encoding="utf-8") as out:
        out.write("started\n")
        out.flush()
        while time.monotonic() < deadline and not stop.exists():
            began = time.perf_counter()
            with engine.begin() as conn:
                stamp = utcnow()
                new_id = conn.execute(
                    sa.insert(AgentLog.__table__)
                    .values(
                        task_id=task_id,
                        agent_type="worker",
                        message="written during backup",
                        timestamp=stamp,
                        log_level="info",
                        created_at=stamp,
                    )
                    .returning(AgentLog.__table__.c.id)
                ).scalar_one()
                # A Core insert outside the store: counted into the hourly rollup as the
                # store's inserts are (SQLite; PostgreSQL's statement trigger counts it).
                count_inserted(conn, [(stamp, "info")])
            out.write(f"{new_id} {time.perf_counter() - began:.4f} {time.time() % 100:.3f}\n")
            out.flush()
            time.sleep(0.002)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))
