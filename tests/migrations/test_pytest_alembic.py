"""pytest-alembic's built-in checks of the migration history, on SQLite and PostgreSQL.

Called explicitly rather than through ``--test-alembic`` (switched off in pyproject.toml), so
they run in every suite run and are parametrised over both dialects like every database test.
"""

from __future__ import annotations

from pytest_alembic import MigrationContext, tests


def test_single_head_revision(alembic_runner: MigrationContext) -> None:
    tests.test_single_head_revision(alembic_runner)


def test_upgrade(alembic_runner: MigrationContext) -> None:
    tests.test_upgrade(alembic_runner)


def test_model_definitions_match_ddl(alembic_runner: MigrationContext) -> None:
    tests.test_model_definitions_match_ddl(alembic_runner)


def test_up_down_consistency(alembic_runner: MigrationContext) -> None:
    tests.test_up_down_consistency(alembic_runner)
