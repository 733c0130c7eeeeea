"""What ``db check`` reports: a :class:`Problem` per finding, gathered in a :class:`CheckReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
