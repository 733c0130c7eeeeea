"""Workers of the real work queue run at once (threads, a transaction per step), for the tests
that check what the queue's steps leave behind."""

from __future__ import annotations

import threading

from swarm_director.db import Database
from swarm_director.store import queue
from tests.store.conftest import new_agent, new_task
from tests.store.reports_swarm import PRIORITIES, TYPES


def run_workers(db: Database, *, workers: int = 4, tasks: int = 40, rounds: int = 30) -> None:
    """Queue ``tasks`` new tasks, then let ``workers`` agents claim two at a time and complete
    two of three, failing the third (retried every other round, for good otherwise), until
    nothing is left or ``rounds`` are done. Raises the first error of any worker."""
    with db.transaction() as session:
        agents = [new_agent(session).id for _ in range(workers)]
        for i in range(tasks):
            new_task(session, type=TYPES[i % 4], priority=PRIORITIES[i % 4])
    errors: list[BaseException] = []

    def work(agent_id: int) -> None:
        try:
            for round_ in range(rounds):
                with db.transaction() as session:
                    claims = queue.claim_tasks(session, agent_id, limit=2)
                for n, claim in enumerate(claims):
                    with db.transaction() as session:
                        if (round_ + n) % 3:
                            queue.complete_task(session, claim.task.id, claim.lease_token)
                        else:
                            retry = bool(round_ % 2)
                            queue.fail_task(
                                session, claim.task.id, claim.lease_token, "boom", retry=retry
                            )
                if not claims:
                    return
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
