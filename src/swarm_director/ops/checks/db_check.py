"""``db check``: engine integrity and the domain rules, each problem named.

Engine level: SQLite ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``; on
PostgreSQL (whose storage checks itself) an orphan query for every foreign key of the models,
which also catches rows written while triggers were disabled, and the monthly partitions of
``agent_logs`` (a default partition and the current month's). Domain level: hierarchy cycles,
draft version gaps and duplicates, email ``sent_at`` against status, counters against the rows
they count, and enum values outside their set.

A rule that cannot even run (a malformed file, a missing table) is itself a problem, so a
damaged database never passes by accident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.db.partitions import PARTITION_BY, list_partitions, month_start, partition_key
from swarm_director.models import (
    Agent,
    Conversation,
    ConversationParticipant,
    Draft,
    EmailMessage,
    EmailStatus,
    MaintenanceOperation,
    MaintenanceStatus,
    Message,
    Task,
)
from swarm_director.ops.audit import write_event
from swarm_director.ops.checks.search_index import search_index_findings
from swarm_director.ops.dbinfo import existing_tables, model_tables, reader, table_of
from swarm_director.redact import first_line

#: At most this many problems are listed per rule; the rest are only counted.
DEFAULT_LIMIT_PER_RULE = 1000


@dataclass(frozen=True)
class Problem:
    """One finding: which rule, where (table and row id when there is one), and what."""

    rule: str
    table: str | None
    row_id: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.table or "-"
        if self.row_id is not None:
            where += f" #{self.row_id}"
        return f"[{self.rule}] {where}: {self.message}"


@dataclass
class CheckReport:
    """What ``db check`` found."""

    dialect: str
    problems: list[Problem] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    omitted: dict[str, int] = field(default_factory=dict)
    """Per rule, how many further problems were found beyond the listed ones."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem_count(self) -> int:
        return len(self.problems) + sum(self.omitted.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dialect": self.dialect,
            "problem_count": self.problem_count,
            "problems": [p.as_dict() for p in self.problems],
            "omitted": self.omitted,
            "rules": self.rules,
            "seconds": round(self.seconds, 3),
        }


#: Every rule's name and what a finding means (the runbook explains the fixes).
RULES: dict[str, str] = {
    "schema": "a model table is missing from the database",
    "integrity": "SQLite's integrity_check found damage in the file",
    "foreign_key": "a row points at a parent row that does not exist",
    "enum_value": "a status/type column holds a value outside its set",
    "agent_cycle": "following agents.parent_id comes back to the same agent",
    "task_cycle": "following tasks.parent_task_id comes back to the same task",
    "draft_version_duplicate": "two drafts of a task have the same version",
    "draft_version_gap": "a task's draft versions are not 1, 2, ..., n",
    "email_sent_at": "an email's sent_at disagrees with its status",
    "counter": "a stored counter differs from the rows it counts",
    "search_index": "a full-text index is missing, invalid, or does not hold exactly its rows",
}


def run_check(engine: Engine, *, limit_per_rule: int = DEFAULT_LIMIT_PER_RULE) -> CheckReport:
    """Run every rule against ``engine``'s database; the report lists what was found."""
    started = time.perf_counter()
    report = _Collector(engine.dialect.name, limit_per_rule)
    read = reader(engine)
    present = _run(report, "schema", read, _missing_tables)
    if engine.dialect.name == "sqlite":
        _run(report, "integrity", read, _sqlite_integrity)
        _run(report, "foreign_key", read, _sqlite_foreign_keys)
    else:
        _run(report, "foreign_key", read, _orphans)
        _run(report, "partitions", read, _partitions)
    if present is not None:
        checks: list[tuple[str, set[str], Callable[[Connection], Iterable[Problem]]]] = [
            ("enum_value", set(), _enum_values),
            ("search_index", set(), _search_indexes),
            ("agent_cycle", {"agents"}, _agent_cycles),
            ("task_cycle", {"tasks"}, _task_cycles),
            ("draft_version_duplicate", {"drafts"}, _draft_duplicates),
            ("draft_version_gap", {"drafts"}, _draft_gaps),
            ("email_sent_at", {"email_messages"}, _email_sent_at),
            (
                "counter",
                {"agents", "conversations", "messages", "conversation_participants"},
                _counters,
            ),
        ]
        for rule, needs, check in checks:
            if needs <= present:
                _run(report, rule, read, check)
    result = report.result
    result.seconds = time.perf_counter() - started
    return result


class _Collector:
    def __init__(self, dialect: str, limit: int) -> None:
        self.result = CheckReport(dialect=dialect)
        self.limit = limit

    def add(self, rule: str, problems: Iterable[Problem]) -> None:
        listed = 0
        for problem in problems:
            if listed < self.limit:
                self.result.problems.append(problem)
                listed += 1
            else:
                self.result.omitted[rule] = self.result.omitted.get(rule, 0) + 1


def _run(
    report: _Collector,
    rule: str,
    engine: Engine,
    check: Callable[[Connection], Any],
) -> Any:
    """Run one rule in its own read transaction; a rule that fails to run is a problem."""
    report.result.rules.append(rule)
    try:
        with engine.connect() as conn:
            outcome = check(conn)
            if rule == "schema":
                missing, present = outcome
                report.add(rule, missing)
                return present
            report.add(rule, outcome)
    except sa.exc.DBAPIError as error:
        message = first_line(error)
        report.add(rule, [Problem(rule, None, None, f"rule could not run: {message}")])
    return None


def _missing_tables(conn: Connection) -> tuple[list[Problem], set[str]]:
    present = existing_tables(conn)
    missing = [
        Problem("schema", t.name, None, "table is missing")
        for t in model_tables()
        if t.name not in present
    ]
    return missing, {t.name for t in model_tables() if t.name in present}


def _partitions(conn: Connection) -> Iterable[Problem]:
    """PostgreSQL: a partitioned table has its default partition and this month's."""
    problems = []
    month = month_start(utcnow())
    for table in model_tables():
        if PARTITION_BY not in table.info or partition_key(conn, table.name) is None:
            continue  # not partitioned here: validate-schema reports that as drift
        parts = list_partitions(conn, table.name)
        if not any(p.is_default for p in parts):
            problems.append(
                Problem("partitions", table.name, None, "no default partition: rows of a "
                        "month without its own partition are refused; run db maintain")
            )  # fmt: skip
        if not any(p.lower is not None and p.upper is not None and p.lower <= month < p.upper
                   for p in parts):  # fmt: skip
            problems.append(
                Problem("partitions", table.name, None, f"no partition for {month:%Y-%m}: "
                        "its rows go to the default partition; run db maintain")
            )  # fmt: skip
    return problems


def _sqlite_integrity(conn: Connection) -> Iterable[Problem]:
    rows = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if rows == ["ok"]:
        return []
    index_tables: dict[str, str] = dict(
        conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master WHERE type='index'").all()
    )
    problems = []
    for entry in rows:
        line = str(entry).replace("*** in database main ***", "").strip()
        table = None
        row_id = None
        words = line.split()
        # e.g. "row 17 missing from index ix_agent_logs_timestamp_id"
        if len(words) >= 6 and words[0] == "row" and words[2:5] == ["missing", "from", "index"]:
            table = index_tables.get(words[5])
            row_id = int(words[1]) if words[1].isdigit() else None
        problems.append(Problem("integrity", table, row_id, line))
    return problems


def _sqlite_foreign_keys(conn: Connection) -> Iterable[Problem]:
    problems = []
    for table, rowid, parent, _fkid in conn.exec_driver_sql("PRAGMA foreign_key_check").all():
        problems.append(
            Problem("foreign_key", table, rowid, f"references a missing row of {parent}")
        )
    return problems


def _orphans(conn: Connection) -> Iterable[Problem]:
    present = existing_tables(conn)
    for table in model_tables():
        if table.name not in present:
            continue
        pk = next(iter(table.primary_key.columns))
        for fk in table.foreign_key_constraints:
            parent = fk.referred_table
            if parent.name not in present:
                continue
            pairs = [(el.parent, el.column) for el in fk.elements]
            child_cols = [child for child, _ in pairs]
            child_alias = table.alias("c")
            parent_alias = parent.alias("p")
            match = sa.and_(*(parent_alias.c[p.name] == child_alias.c[c.name] for c, p in pairs))
            query = (
                sa.select(child_alias.c[pk.name], *(child_alias.c[c.name] for c in child_cols))
                .where(*(child_alias.c[c.name].is_not(None) for c in child_cols))
                .where(~sa.exists().where(match))
                .order_by(child_alias.c[pk.name])
            )
            for row in conn.execute(query):
                refs = ", ".join(f"{c.name}={v}" for c, v in zip(child_cols, row[1:], strict=True))
                yield Problem(
                    "foreign_key",
                    table.name,
                    row[0],
                    f"{refs} references a missing {parent.name} row",
                )


def _search_indexes(conn: Connection) -> Iterable[Problem]:
    for table, row_id, message in search_index_findings(conn):
        yield Problem("search_index", table, row_id, message)


def _enum_values(conn: Connection) -> Iterable[Problem]:
    present = existing_tables(conn)
    for table in model_tables():
        if table.name not in present:
            continue
        pk = next(iter(table.primary_key.columns))
        for column in table.columns:
            if not isinstance(column.type, sa.Enum):
                continue
            allowed = list(column.type.enums)
            raw = sa.type_coerce(column, sa.String())
            query = sa.select(pk, raw).where(raw.is_not(None), raw.not_in(allowed)).order_by(pk)
            for row_id, value in conn.execute(query):
                yield Problem(
                    "enum_value",
                    table.name,
                    row_id,
                    f"{column.name}={value!r} is not one of {', '.join(allowed)}",
                )


def _cycles(edges: dict[int, int]) -> list[list[int]]:
    """Every cycle in the parent graph ``edges`` (child -> parent), each once."""
    done: set[int] = set()
    cycles: list[list[int]] = []
    for start in edges:
        if start in done:
            continue
        path: list[int] = []
        on_path: dict[int, int] = {}
        node: int | None = start
        while node is not None and node not in done and node not in on_path:
            on_path[node] = len(path)
            path.append(node)
            node = edges.get(node)
        if node is not None and node in on_path:
            cycles.append(path[on_path[node] :])
        done.update(path)
    return cycles


def _hierarchy_cycles(
    conn: Connection, rule: str, table: sa.Table, parent: sa.Column[Any]
) -> Iterable[Problem]:
    pk = table.c.id
    edges = {
        int(child): int(par)
        for child, par in conn.execute(sa.select(pk, parent).where(parent.is_not(None)))
    }
    for cycle in _cycles(edges):
        first = cycle.index(min(cycle))
        ordered = cycle[first:] + cycle[:first]
        chain = " -> ".join(str(i) for i in [*ordered, ordered[0]])
        yield Problem(rule, table.name, ordered[0], f"{parent.name} cycle {chain}")


def _agent_cycles(conn: Connection) -> Iterable[Problem]:
    table = table_of(Agent)
    return _hierarchy_cycles(conn, "agent_cycle", table, table.c.parent_id)


def _task_cycles(conn: Connection) -> Iterable[Problem]:
    table = table_of(Task)
    return _hierarchy_cycles(conn, "task_cycle", table, table.c.parent_task_id)


def _draft_versions(conn: Connection, having: sa.ColumnElement[bool]) -> dict[int, list[Any]]:
    drafts = table_of(Draft)
    flagged = (
        sa.select(drafts.c.task_id).group_by(drafts.c.task_id).having(having).scalar_subquery()
    )
    rows = conn.execute(
        sa.select(drafts.c.task_id, drafts.c.id, drafts.c.version)
        .where(drafts.c.task_id.in_(flagged))
        .order_by(drafts.c.task_id, drafts.c.version, drafts.c.id)
    )
    by_task: dict[int, list[Any]] = {}
    for task_id, draft_id, version in rows:
        by_task.setdefault(task_id, []).append((draft_id, version))
    return by_task


def _draft_duplicates(conn: Connection) -> Iterable[Problem]:
    drafts = table_of(Draft)
    having = sa.func.count() != sa.func.count(sa.distinct(drafts.c.version))
    for task_id, versions in _draft_versions(conn, having).items():
        seen: set[int] = set()
        for draft_id, version in versions:
            if version in seen:
                yield Problem(
                    "draft_version_duplicate",
                    "drafts",
                    draft_id,
                    f"task {task_id} has version {version} more than once",
                )
            seen.add(version)


def _draft_gaps(conn: Connection) -> Iterable[Problem]:
    drafts = table_of(Draft)
    distinct = sa.func.count(sa.distinct(drafts.c.version))
    having = sa.or_(sa.func.min(drafts.c.version) != 1, sa.func.max(drafts.c.version) != distinct)
    for task_id, versions in _draft_versions(conn, having).items():
        expected = 1
        for draft_id, version in versions:
            if version > expected:
                missing = f"{expected}" if version == expected + 1 else f"{expected}..{version - 1}"
                yield Problem(
                    "draft_version_gap",
                    "drafts",
                    draft_id,
                    f"task {task_id} jumps to version {version}; missing {missing}",
                )
            elif version < 1:
                yield Problem(
                    "draft_version_gap",
                    "drafts",
                    draft_id,
                    f"task {task_id} has version {version}; versions start at 1",
                )
            expected = max(expected, version + 1)


def _email_sent_at(conn: Connection) -> Iterable[Problem]:
    emails = table_of(EmailMessage)
    status = sa.type_coerce(emails.c.status, sa.String())
    # The store sets sent_at on the change to sent, keeps it through delivered or a bounce
    # (sent -> failed) and clears it on a retry (-> queued): sent/delivered must have it,
    # draft/queued must not, failed may or may not (it failed before or after leaving).
    left = [EmailStatus.SENT.value, EmailStatus.DELIVERED.value]
    not_left = [EmailStatus.DRAFT.value, EmailStatus.QUEUED.value]
    query = (
        sa.select(emails.c.id, status, emails.c.sent_at)
        .where(
            sa.or_(
                sa.and_(status.in_(left), emails.c.sent_at.is_(None)),
                sa.and_(status.in_(not_left), emails.c.sent_at.is_not(None)),
            )
        )
        .order_by(emails.c.id)
    )
    for email_id, value, sent_at in conn.execute(query):
        if sent_at is None:
            message = f"status is {value} but sent_at is empty"
        else:
            message = f"status is {value} but sent_at is set ({sent_at})"
        yield Problem("email_sent_at", "email_messages", email_id, message)


def _counters(conn: Connection) -> Iterable[Problem]:
    agents = table_of(Agent)
    conversations = table_of(Conversation)
    messages = table_of(Message)
    participants = table_of(ConversationParticipant)
    # (owner table, counter column, correlated count of the rows it counts, lifetime?)
    # Conversation and participant counters are exact. The agents' totals are lifetime
    # statistics the store keeps when a conversation is deleted, so they may exceed the rows
    # left, never fall short of them.
    rules: list[tuple[sa.Table, sa.Column[Any], sa.ScalarSelect[Any], bool]] = [
        (
            conversations,
            conversations.c.message_count,
            sa.select(sa.func.count())
            .where(messages.c.conversation_id == conversations.c.id)
            .scalar_subquery(),
            False,
        ),
        (
            conversations,
            conversations.c.participant_count,
            sa.select(sa.func.count())
            .where(
                participants.c.conversation_id == conversations.c.id,
                participants.c.is_active.is_(True),
            )
            .scalar_subquery(),
            False,
        ),
        (
            agents,
            agents.c.total_messages_sent,
            sa.select(sa.func.count())
            .where(messages.c.sender_agent_id == agents.c.id)
            .scalar_subquery(),
            True,
        ),
        (
            agents,
            agents.c.total_conversations,
            sa.select(sa.func.count())
            .where(participants.c.agent_id == agents.c.id)
            .scalar_subquery(),
            True,
        ),
        (
            participants,
            participants.c.message_count,
            sa.select(sa.func.count())
            .where(
                messages.c.conversation_id == participants.c.conversation_id,
                messages.c.sender_agent_id == participants.c.agent_id,
            )
            .scalar_subquery(),
            False,
        ),
    ]
    for owner, column, actual, lifetime in rules:
        wrong = column < actual if lifetime else column != actual
        query = sa.select(owner.c.id, column, actual).where(wrong).order_by(owner.c.id)
        for row_id, stored, counted in conn.execute(query):
            yield Problem(
                "counter",
                owner.name,
                row_id,
                f"{column.name} is {stored} but the rows say "
                f"{'at least ' if lifetime else ''}{counted}",
            )


def check_database(engine: Engine, *, limit_per_rule: int = DEFAULT_LIMIT_PER_RULE) -> CheckReport:
    """:func:`run_check`, recorded in the audit trail (``failed`` when anything was found)."""
    started = utcnow()
    report = run_check(engine, limit_per_rule=limit_per_rule)
    by_rule: dict[str, int] = {}
    for problem in report.problems:
        by_rule[problem.rule] = by_rule.get(problem.rule, 0) + 1
    for rule, extra in report.omitted.items():
        by_rule[rule] = by_rule.get(rule, 0) + extra
    details: dict[str, Any] = {"problems": report.problem_count, "by_rule": by_rule}
    if not report.ok:
        details["error"] = f"{report.problem_count} problem(s) found"
    status = MaintenanceStatus.OK if report.ok else MaintenanceStatus.FAILED
    write_event(engine, MaintenanceOperation.CHECK, status, started, details)
    return report
