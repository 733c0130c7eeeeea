"""The console's history: a task's timeline shows each status change with who made it; the
activity page lists the swarm's changes, filtered and paged."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from swarm_director.db.actor import acting_as
from swarm_director.store import agents, queue, tasks
from swarm_director.web.context import database
from tests.console.conftest import Swarm
from tests.console.test_pages import page


def test_the_timeline_shows_every_status_change_and_its_actor(
    console_app: Flask, ui: FlaskClient, swarm: Swarm
) -> None:
    db = database(console_app)
    with acting_as("fleet-key"), db.transaction() as s:
        task_id = tasks.create_task(s, {"type": "analysis", "title": "Chart the numbers"}).id
    with acting_as("fleet-key"), db.transaction() as s:
        claims = queue.claim_tasks(s, swarm.worker, limit=100)
    (ours,) = [c for c in claims if c.task.id == task_id]
    with acting_as("fleet-key"), db.transaction() as s:
        queue.fail_task(s, task_id, ours.lease_token, "model timed out")
    with acting_as("ops-person"), db.transaction() as s:
        tasks.update_task(s, task_id, {"priority": "critical"})

    html = page(ui, f"/ui/tasks/{task_id}")
    timeline = html[html.index('id="h-time"') : html.index('id="h-logs"')]
    assert "created (pending)" in timeline
    assert f"claimed, attempt 1 by agent #{swarm.worker}" in timeline
    assert "attempt failed, will be retried, attempt 1: model timed out" in timeline
    assert "priority: medium → critical" in timeline
    assert "(fleet-key)" in timeline and "(ops-person)" in timeline
    assert "intermediate status changes are not recorded" not in html


def test_the_activity_page_filters_by_actor_and_kind(
    console_app: Flask, ui: FlaskClient, swarm: Swarm
) -> None:
    db = database(console_app)
    with acting_as("auditor<script>"), db.transaction() as s:
        tasks.update_task(s, swarm.task, {"title": "Renamed by the auditor"})
    html = page(ui, "/ui/activity?actor=auditor<script>")
    assert "auditor&lt;script&gt;" in html and "<script>" not in html.split("</nav>", 1)[1]
    assert "Renamed by the auditor" in html
    assert "task #" in html
    everything = page(ui, "/ui/activity")
    assert everything.count("<tr>") > 5
    agents_only = page(ui, "/ui/activity?entity=agent")
    assert "task #" not in agents_only and "agent #" in agents_only
    assert ui.get("/ui/activity?entity=log").status_code == 422


def test_the_queue_page_lists_stuck_and_dead_tasks(
    console_app: Flask, ui: FlaskClient, swarm: Swarm
) -> None:
    db = database(console_app)
    with db.transaction() as s:
        stuck = tasks.create_task(s, {"type": "analysis", "title": "Stuck one"}).id
        dead = tasks.create_task(s, {"type": "analysis", "title": "Dead one", "max_attempts": 1}).id
    with db.transaction() as s:
        claims = {c.task.id: c for c in queue.claim_tasks(s, swarm.worker, limit=100)}
    with db.transaction() as s:
        queue.fail_task(s, dead, claims[dead].lease_token, "no model answered")
        queue.heartbeat(s, stuck, claims[stuck].lease_token, lease_s=0.01)
    time.sleep(0.05)  # the stuck task's lease runs out
    html = page(ui, "/ui/queue")
    stuck_part = html[html.index('id="h-stuck"') : html.index('id="h-dead"')]
    dead_part = html[html.index('id="h-dead"') :]
    assert "Stuck one" in stuck_part and "Dead one" not in stuck_part
    assert "Dead one" in dead_part and "no model answered" in dead_part
    assert f"/ui/tasks/{stuck}" in stuck_part


def test_the_agent_page_shows_its_changes_and_last_sign_of_life(
    console_app: Flask, ui: FlaskClient, swarm: Swarm
) -> None:
    db = database(console_app)
    with acting_as("ops-person"), db.transaction() as s:
        agents.update_agent(s, swarm.worker, {"status": "offline"})
    with db.transaction() as s:
        tasks.create_task(s, {"type": "analysis", "title": "for the sign of life"})
    with db.transaction() as s:
        queue.claim_tasks(s, swarm.worker)
    html = page(ui, f"/ui/agents/{swarm.worker}")
    changes = html[html.index('id="h-changes"') :]
    assert "status:" in changes and "offline" in changes and "(ops-person)" in changes
    life = html[html.index("Last sign of life") : html.index("</dl>")]
    assert "—" not in life.split("</dd>")[0]
