"""What the attempts' triggers cost the work queue's hot path: ``attempt_count_hours``'
(``--upkeep counts``) or the durations' digests' (``--upkeep digests``).

    .venv/bin/python bench/attempt_counts.py [--dialect sqlite|postgresql|both]
        [--block 200] [--blocks 10] [--upkeep counts|digests]

On a fresh database per dialect: one agent claims and completes queued tasks through the
store (``queue.claim_tasks`` then ``queue.complete_task``, a transaction each), in blocks of
``--block`` tasks, alternately with those triggers in place and dropped (ABBA order,
so a drift over the run falls on both sides). Prints the median milliseconds a task with and
without them, and the ratio: the baseline is the same queue without the upkeep, in the same
run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import Target
from swarm_director.models import attempt_count_ddl, attempt_digest_ddl
from swarm_director.store import agents, queue, tasks

UPKEEP = {"counts": attempt_count_ddl, "digests": attempt_digest_ddl}


def _triggers(target: Target, on: bool, upkeep: str) -> None:
    dialect = target.dialect
    ddl = UPKEEP[upkeep]
    with target.database.engine.begin() as conn:
        for statement in ddl.drop(dialect):
            conn.exec_driver_sql(statement)
        for statement in ddl.create(dialect) if on else []:
            conn.exec_driver_sql(statement)


def run(dialect: str, block: int, blocks: int, work: Path, upkeep: str = "counts") -> None:
    target = Target(dialect, work)
    db = target.database
    try:
        with db.transaction() as session:
            agent = agents.create_agent(session, {"name": "bench", "agent_type": "worker"}).id
            for i in range(block * blocks):
                tasks.create_task(session, {"type": "analysis", "title": f"bench {i}"})
        times: dict[bool, list[float]] = {True: [], False: []}
        for b in range(blocks):
            on = (b % 4) in (0, 3)  # on, off, off, on, ...
            _triggers(target, on, upkeep)
            started = time.perf_counter()
            for _ in range(block):
                with db.transaction() as session:
                    (claim,) = queue.claim_tasks(session, agent, limit=1)
                with db.transaction() as session:
                    queue.complete_task(session, claim.task.id, claim.lease_token)
            times[on].append((time.perf_counter() - started) / block * 1e3)
        with_, without = (statistics.median(times[k]) for k in (True, False))
        print(
            f"{dialect}: claim + complete {with_:.3f} ms a task with the attempt {upkeep}' "
            f"triggers, {without:.3f} ms without -> {with_ / without:.2f}x "
            f"({blocks} blocks of {block}, alternating)"
        )
    finally:
        target.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--upkeep", choices=sorted(UPKEEP), default="counts")
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    with tempfile.TemporaryDirectory(prefix="sd-bench-attempt-counts-") as work:
        for dialect in dialects:
            run(dialect, args.block, args.blocks, Path(work), args.upkeep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
