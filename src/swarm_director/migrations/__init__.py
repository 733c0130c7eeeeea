"""Alembic environment and revisions of the schema, and :mod:`.migrate`, the one way to run
them (upgrade, downgrade, current revision, head)."""
