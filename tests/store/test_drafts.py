"""Drafts: versions 1..N even under concurrent writers, immutable content, reviews, diffs."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from swarm_director.db import Database, make_engine
from swarm_director.errors import NotFoundError, ValidationError
from swarm_director.models import Draft, DraftStatus
from swarm_director.store import drafts, tasks
from tests.store.conftest import new_agent, new_task


def versions(db: Database, task_id: int) -> list[int]:
    with db.read() as s:
        return list(
            s.scalars(
                sa.select(Draft.version).where(Draft.task_id == task_id).order_by(Draft.version)
            )
        )


def test_versions_count_up_per_task(session: Session) -> None:
    author = new_agent(session)
    task, other = new_task(session), new_task(session)
    made = [
        drafts.create_draft(session, task.id, {"content": f"v{i}", "author_agent_id": author.id})
        for i in range(1, 4)
    ]
    assert [d.version for d in made] == [1, 2, 3]
    assert drafts.create_draft(session, other.id, {"content": "x"}).version == 1
    assert drafts.get_draft_version(session, task.id, 2).content == "v2"
    assert drafts.get_draft(session, made[0].id).author_agent_id == author.id
    page = drafts.list_drafts(session, task.id, limit=2)
    assert [d.version for d in page.items] == [1, 2] and page.next_cursor is not None
    rest = drafts.list_drafts(session, task.id, limit=2, cursor=page.next_cursor)
    assert [d.version for d in rest.items] == [3] and rest.next_cursor is None


def test_missing_rows(session: Session) -> None:
    with pytest.raises(NotFoundError):
        drafts.create_draft(session, 404, {"content": "x"})
    task = new_task(session)
    with pytest.raises(ValidationError) as info:
        drafts.create_draft(session, task.id, {"content": "x", "author_agent_id": 404})
    assert "author_agent_id" in info.value.details["fields"]
    with pytest.raises(NotFoundError):
        drafts.get_draft_version(session, task.id, 1)
    with pytest.raises(NotFoundError):
        drafts.get_draft_version(session, 404, 1)
    with pytest.raises(NotFoundError):
        drafts.list_drafts(session, 404)
    with pytest.raises(NotFoundError):
        drafts.get_draft(session, 404)


def test_review_changes_status_reviewer_and_notes_only(db: Database) -> None:
    with db.transaction() as s:
        reviewer = new_agent(s)
        draft = drafts.create_draft(s, new_task(s).id, {"content": "original"})
        reviewed = drafts.review_draft(
            s,
            draft.id,
            {"status": "approved", "reviewer_agent_id": reviewer.id, "review_notes": "ok"},
        )
        assert (reviewed.status, reviewed.reviewer_agent_id, reviewed.review_notes) == (
            DraftStatus.APPROVED,
            reviewer.id,
            "ok",
        )
    with db.transaction() as s:
        with pytest.raises(ValidationError) as info:
            drafts.review_draft(s, draft.id, {"content": "rewritten", "status": "rejected"})
        assert "content" in info.value.details["fields"]
        with pytest.raises(ValidationError):
            drafts.review_draft(s, draft.id, {"reviewer_agent_id": 999})
    with db.read() as s:
        stored = drafts.get_draft(s, draft.id)
        assert (stored.content, stored.status) == ("original", DraftStatus.APPROVED)


def test_diff_between_versions(session: Session) -> None:
    task = new_task(session)
    drafts.create_draft(session, task.id, {"content": "Dear team,\nthe report is late.\nBye"})
    drafts.create_draft(session, task.id, {"content": "Dear team,\nthe report is ready.\nBye"})
    diff = drafts.diff_drafts(session, task.id, 1, 2)
    assert "-the report is late.\n" in diff and "+the report is ready.\n" in diff
    assert f"--- task {task.id} version 1" in diff and f"+++ task {task.id} version 2" in diff
    assert " Dear team,\n" in diff
    assert drafts.diff_drafts(session, task.id, 2, 2) == ""
    with pytest.raises(NotFoundError):
        drafts.diff_drafts(session, task.id, 1, 3)


def _write_drafts(db: Database, task_id: int, count: int, start: threading.Barrier | None) -> None:
    if start is not None:
        start.wait()
    for i in range(count):
        with db.transaction() as s:
            drafts.create_draft(s, task_id, {"content": f"text {i}"})


def test_concurrent_writers_get_consecutive_versions(db: Database) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
    writers, each = 4, 6
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _write_drafts(db, task_id, each, start)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert versions(db, task_id) == list(range(1, writers * each + 1))


def _process_writer(url: str, task_id: int, count: int, start: object) -> None:
    database = Database(make_engine(url))
    start.wait()  # type: ignore[attr-defined]
    try:
        _write_drafts(database, task_id, count, None)
    finally:
        database.dispose()


# separate processes on one SQLite file; PostgreSQL is covered by threads
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_concurrent_processes_get_consecutive_versions(db: Database, db_url: URL) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
    context = multiprocessing.get_context("spawn")
    processes, each = 3, 8
    start = context.Barrier(processes)
    url = db_url.render_as_string(hide_password=False)
    workers = [
        context.Process(target=_process_writer, args=(url, task_id, each, start))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * processes
    assert versions(db, task_id) == list(range(1, processes * each + 1))


def test_drafts_waiting_for_review_are_listed_longest_waiting_first(db: Database) -> None:
    with db.transaction() as s:
        task = tasks.create_task(s, {"type": "email_draft", "title": "letter"})
        first = drafts.create_draft(s, task.id, {"content": "one"})
        second = drafts.create_draft(s, task.id, {"content": "two"})
        drafts.create_draft(s, task.id, {"content": "three"})  # still a draft
        drafts.review_draft(s, first.id, {"status": "under_review"})
        drafts.review_draft(s, second.id, {"status": "under_review"})
        first_id, second_id = first.id, second.id
    with db.transaction() as s:
        drafts.review_draft(s, first_id, {"status": "approved"})
    with db.read() as s:
        assert [d.id for d in drafts.list_drafts_for_review(s)] == [second_id]
