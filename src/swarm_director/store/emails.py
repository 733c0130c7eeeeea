"""Email messages of a task and their delivery lifecycle.

``sent_at`` is when the email last became ``sent``: it is set on that change, kept while the
email goes on to ``delivered`` or bounces (sent→failed), and cleared when a failed email is
queued again, so ``sent_at`` is set exactly for emails that left at least once since their last
retry. ``error_message`` describes the last failure and is cleared on retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.errors import ConflictError, ValidationError
from swarm_director.models import EMAIL_TRANSITIONS, Draft, EmailMessage, EmailStatus, Task
from swarm_director.schemas.emails import EmailCreate, EmailStatusUpdate, EmailUpdate
from swarm_director.schemas.filters import EmailFilter
from swarm_director.store._common import check_transition, get_or_404, lock_or_404, validated
from swarm_director.store.filtering import FilterRules
from swarm_director.store.pagination import DEFAULT_LIMIT, Ordering, Page, paginate

_BY_ID = Ordering("emails", (EmailMessage.id,))
#: Fields that describe the message itself; they change only while it is a draft.
_CONTENT_FIELDS = frozenset({"recipient", "subject", "body", "sender", "cc", "bcc", "draft_id"})


def _check_draft(session: Session, task_id: int, draft_id: int | None) -> None:
    if draft_id is None:
        return
    draft = session.get(Draft, draft_id)
    if draft is None or draft.task_id != task_id:
        problem = "does not exist" if draft is None else f"belongs to task {draft.task_id}"
        raise ValidationError(
            f"draft {draft_id} {problem}",
            details={"fields": {"draft_id": f"draft {draft_id} {problem}"}},
        )


def create_email(
    session: Session, task_id: int, data: EmailCreate | Mapping[str, Any]
) -> EmailMessage:
    """Creates an email for a task (as a draft, or queued for sending) and returns it.

    Raises NotFoundError (task), ValidationError (bad field, draft missing or of another task).
    """
    body = validated(EmailCreate, data, "email")
    get_or_404(session, Task, task_id, "task")
    _check_draft(session, task_id, body.draft_id)
    email = EmailMessage(task_id=task_id, **body.model_dump())
    session.add(email)
    session.flush()
    return email


def get_email(session: Session, email_id: int) -> EmailMessage:
    """The email with this id; NotFoundError if there is none."""
    return get_or_404(session, EmailMessage, email_id, "email")


def list_emails(
    session: Session,
    email_filter: EmailFilter | Mapping[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[EmailMessage]:
    """A page of emails, oldest first, of a task and/or in a status (``queued`` is the outbox;
    ``email_filter``: an :class:`~swarm_director.schemas.filters.EmailFilter` or a mapping of
    its fields). Raises ValidationError for a bad filter, limit or cursor."""
    stmt = EMAIL_FILTERS.apply(select(EmailMessage), EMAIL_FILTERS.parse(email_filter))
    return paginate(session, stmt, _BY_ID, limit=limit, cursor=cursor)


#: The conditions of :class:`EmailFilter`.
EMAIL_FILTERS = FilterRules(EmailFilter, status=EmailMessage.status, task_id=EmailMessage.task_id)


def _apply_status(email: EmailMessage, new: EmailStatus, error_message: str | None) -> None:
    """Checks and applies one status change (no change at all when ``new`` is the current one
    and no error message is given)."""
    if error_message is not None and new is not EmailStatus.FAILED:
        raise ValidationError(
            "error_message goes only with status failed",
            details={"fields": {"error_message": "allowed only with status failed"}},
        )
    if new == email.status:
        if error_message is not None:
            email.error_message = error_message
        return
    check_transition(EMAIL_TRANSITIONS, "email", email.id, email.status, new)
    if new is EmailStatus.SENT:
        email.sent_at = utcnow()
    elif new is EmailStatus.QUEUED:
        email.sent_at = None
        email.error_message = None
    elif new is EmailStatus.FAILED:
        email.error_message = error_message
    email.status = new


def set_email_status(
    session: Session, email_id: int, status: EmailStatus | str, error_message: str | None = None
) -> EmailMessage:
    """Moves the email to ``status`` along draft→queued→sent→delivered, queued→failed,
    sent→failed (bounce), failed→queued (retry), and returns it.

    Raises NotFoundError, ValidationError (unknown status, error_message without failed),
    InvalidTransitionError (a change the lifecycle does not allow; nothing is changed).
    """
    body = validated(
        EmailStatusUpdate, {"status": status, "error_message": error_message}, "status change"
    )
    email = lock_or_404(session, EmailMessage, email_id, "email")
    _apply_status(email, body.status, body.error_message)
    session.flush()
    return email


def update_email(
    session: Session, email_id: int, data: EmailUpdate | Mapping[str, Any]
) -> EmailMessage:
    """Applies the fields present in ``data`` and returns the email. Addresses, subject, body
    and draft change only while the email is a draft; a status in ``data`` is applied after
    them, as :func:`set_email_status` does. Nothing changes unless everything is valid.

    Raises NotFoundError, ValidationError, ConflictError (editing an email that is no longer
    a draft), InvalidTransitionError.
    """
    changes = validated(EmailUpdate, data, "email update").model_dump(exclude_unset=True)
    email = lock_or_404(session, EmailMessage, email_id, "email")
    content = {k: v for k, v in changes.items() if k in _CONTENT_FIELDS}
    if content and email.status is not EmailStatus.DRAFT:
        raise ConflictError(
            f"email {email.id} is {email.status.value}; only a draft can be edited",
            details={"fields": dict.fromkeys(content, "only a draft can be edited")},
        )
    _check_draft(session, email.task_id, content.get("draft_id"))
    # _apply_status refuses before it changes anything, and content is applied only after it.
    _apply_status(email, changes.get("status", email.status), changes.get("error_message"))
    for field, value in content.items():
        setattr(email, field, value)
    session.flush()
    return email
