"""Emails: CRUD, the outbox, the delivery lifecycle and sent_at."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from swarm_director.models import EmailStatus
from swarm_director.store import drafts, emails
from tests.store.conftest import new_task

MAIL = {"recipient": "client@example.com", "subject": "Report", "body": "Hello"}


def test_create_get_list(session: Session) -> None:
    task = new_task(session)
    draft = drafts.create_draft(session, task.id, {"content": "Hello"})
    email = emails.create_email(
        session,
        task.id,
        {**MAIL, "cc": ["a@example.com"], "sender": "bot@example.com", "draft_id": draft.id},
    )
    assert (email.status, email.sent_at, email.cc, email.bcc) == (
        EmailStatus.DRAFT,
        None,
        ["a@example.com"],
        [],
    )
    assert emails.get_email(session, email.id).draft_id == draft.id
    queued = emails.create_email(session, task.id, {**MAIL, "status": "queued"})
    assert [e.id for e in emails.list_emails(session, {"task_id": task.id}).items] == [
        email.id,
        queued.id,
    ]
    assert [e.id for e in emails.list_emails(session, {"status": EmailStatus.QUEUED}).items] == [
        queued.id
    ]


def test_creation_errors(session: Session) -> None:
    with pytest.raises(NotFoundError):
        emails.create_email(session, 404, MAIL)
    task, other = new_task(session), new_task(session)
    with pytest.raises(ValidationError) as info:
        emails.create_email(session, task.id, {**MAIL, "recipient": "not-an-address"})
    assert "recipient" in info.value.details["fields"]
    foreign = drafts.create_draft(session, other.id, {"content": "x"})
    for draft_id in (foreign.id, 404):
        with pytest.raises(ValidationError) as info:
            emails.create_email(session, task.id, {**MAIL, "draft_id": draft_id})
        assert "draft_id" in info.value.details["fields"]


def test_outbox_is_oldest_first_across_tasks(session: Session) -> None:
    ids = [
        emails.create_email(session, new_task(session).id, {**MAIL, "status": "queued"}).id
        for _ in range(5)
    ]
    emails.set_email_status(session, ids[1], "sent")
    page = emails.list_emails(session, {"status": EmailStatus.QUEUED}, limit=2)
    rest = emails.list_emails(
        session, {"status": EmailStatus.QUEUED}, limit=2, cursor=page.next_cursor
    )
    assert [e.id for e in page.items + rest.items] == [ids[0], ids[2], ids[3], ids[4]]


def test_sent_at_is_set_exactly_when_sent(session: Session) -> None:
    email = emails.create_email(session, new_task(session).id, MAIL)
    assert emails.set_email_status(session, email.id, "queued").sent_at is None
    sent = emails.set_email_status(session, email.id, EmailStatus.SENT)
    first_sent_at = sent.sent_at
    assert first_sent_at is not None and first_sent_at.tzinfo is not None
    delivered = emails.set_email_status(session, email.id, "delivered")
    assert (delivered.status, delivered.sent_at) == (EmailStatus.DELIVERED, first_sent_at)


def test_bounce_and_retry(session: Session) -> None:
    email = emails.create_email(session, new_task(session).id, {**MAIL, "status": "queued"})
    failed = emails.set_email_status(session, email.id, "failed", error_message="mailbox full")
    assert (failed.sent_at, failed.error_message) == (None, "mailbox full")
    retried = emails.set_email_status(session, email.id, "queued")
    assert (retried.sent_at, retried.error_message) == (None, None)
    sent_at = emails.set_email_status(session, email.id, "sent").sent_at
    bounced = emails.set_email_status(session, email.id, "failed", error_message="bounced")
    # A bounce keeps the time it left; queueing it again clears it until it is sent again.
    assert (bounced.sent_at, bounced.error_message) == (sent_at, "bounced")
    assert emails.set_email_status(session, email.id, "queued").sent_at is None
    assert emails.set_email_status(session, email.id, "sent").sent_at is not None


def test_error_message_only_with_failed(session: Session) -> None:
    email = emails.create_email(session, new_task(session).id, MAIL)
    with pytest.raises(ValidationError) as info:
        emails.set_email_status(session, email.id, "queued", error_message="why")
    assert "error_message" in info.value.details["fields"]
    with pytest.raises(ValidationError) as info:
        emails.set_email_status(session, email.id, "teleported")
    assert "status" in info.value.details["fields"]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), "sent"),
        ((), "delivered"),
        ((), "failed"),
        (("queued",), "delivered"),
        (("queued",), "draft"),
        (("queued", "sent"), "queued"),
        (("queued", "sent", "delivered"), "failed"),
        (("queued", "sent", "delivered"), "queued"),
        (("queued", "failed"), "sent"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(
    db: Database, path: tuple[str, ...], illegal: str
) -> None:
    with db.transaction() as s:
        email_id = emails.create_email(s, new_task(s).id, MAIL).id
        for status in path:
            emails.set_email_status(s, email_id, status)
    with db.read() as s:
        before = emails.get_email(s, email_id)
        snapshot = (before.status, before.sent_at, before.error_message, before.updated_at)
    with db.transaction() as s:
        with pytest.raises(InvalidTransitionError) as info:
            emails.set_email_status(s, email_id, illegal)
        assert (info.value.details["from"], info.value.details["to"]) == (snapshot[0], illegal)
    with db.read() as s:
        after = emails.get_email(s, email_id)
        assert (after.status, after.sent_at, after.error_message, after.updated_at) == snapshot


def test_content_edits_only_while_draft(db: Database) -> None:
    with db.transaction() as s:
        email = emails.create_email(s, new_task(s).id, MAIL)
        edited = emails.update_email(
            s, email.id, {"subject": "Final report", "bcc": ["x@example.com"]}
        )
        assert (edited.subject, edited.bcc) == ("Final report", ["x@example.com"])
        queued = emails.update_email(s, email.id, {"body": "Hello again", "status": "queued"})
        assert (queued.body, queued.status) == ("Hello again", EmailStatus.QUEUED)
    with db.transaction() as s:
        with pytest.raises(ConflictError) as info:
            emails.update_email(s, email.id, {"subject": "too late", "status": "sent"})
        assert "subject" in info.value.details["fields"]
        with pytest.raises(InvalidTransitionError):
            emails.update_email(s, email.id, {"status": "delivered"})
    with db.read() as s:
        stored = emails.get_email(s, email.id)
        assert (stored.subject, stored.status, stored.sent_at) == (
            "Final report",
            EmailStatus.QUEUED,
            None,
        )


def test_update_refused_when_status_illegal_keeps_content(db: Database) -> None:
    with db.transaction() as s:
        email_id = emails.create_email(s, new_task(s).id, MAIL).id
    with db.transaction() as s:
        with pytest.raises(InvalidTransitionError):
            emails.update_email(s, email_id, {"subject": "changed", "status": "sent"})
        assert emails.get_email(s, email_id).subject == "Report"
