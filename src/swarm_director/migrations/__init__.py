"""Alembic environment and revisions of the schema (run them through swarm_director.schema)."""
