"""Emails: per task, the outbox across tasks, and status changes along the lifecycle."""

from __future__ import annotations

from flask import Response
from pydantic import BaseModel

from swarm_director.api.common import (
    PageQuery,
    TaskPath,
    blueprint,
    created_response,
    json_response,
    listed,
)
from swarm_director.schemas import EmailCreate, EmailOut, EmailPage, EmailUpdate
from swarm_director.schemas.common import PositiveId
from swarm_director.schemas.filters import EmailFilter, TaskEmailFilter
from swarm_director.store import emails, tasks
from swarm_director.web.context import session
from swarm_director.web.errors import ErrorResponse

bp = blueprint("emails", "Emails of tasks and the outbox (status=queued).")


class EmailPath(BaseModel):
    email_id: PositiveId


class TaskEmailQuery(TaskEmailFilter, PageQuery):
    """The query of a task's emails: the filters and a page."""


class EmailQuery(EmailFilter, TaskEmailQuery):
    """The query of emails across tasks: the filters and a page."""


@bp.get("/tasks/<int:task_id>/emails", responses={200: EmailPage})
def list_task_emails(path: TaskPath, query: TaskEmailQuery) -> Response:
    """List a task's emails, oldest first, optionally in one status."""
    tasks.get_task(session(), path.task_id)  # 404 for a missing task, not an empty page
    wanted = EmailFilter.of(query, task_id=path.task_id)
    return listed(EmailPage, emails.list_emails, wanted, query=query)


@bp.post("/tasks/<int:task_id>/emails", responses={201: EmailOut})
def create_email(path: TaskPath, body: EmailCreate) -> Response:
    """Write an email for a task, as a draft or straight into the outbox (status queued)."""
    email = emails.create_email(session(), path.task_id, body)
    return created_response(EmailOut.model_validate(email), f"/api/emails/{email.id}")


@bp.get("/emails", responses={200: EmailPage})
def list_emails(query: EmailQuery) -> Response:
    """List emails across tasks, oldest first; `?status=queued` is the outbox."""
    return listed(EmailPage, emails.list_emails, EmailFilter.of(query), query=query)


@bp.get("/emails/<int:email_id>", responses={200: EmailOut})
def get_email(path: EmailPath) -> Response:
    """Get one email."""
    return json_response(EmailOut.model_validate(emails.get_email(session(), path.email_id)))


@bp.patch("/emails/<int:email_id>", responses={200: EmailOut, 409: ErrorResponse})
def update_email(path: EmailPath, body: EmailUpdate) -> Response:
    """Edit a draft email and/or change its status along draft→queued→sent→delivered,
    queued→failed, sent→failed, failed→queued. Any other change, or editing an email that
    is no longer a draft, is 409; `sent_at` is set when it becomes sent."""
    email = emails.update_email(session(), path.email_id, body)
    return json_response(EmailOut.model_validate(email))
