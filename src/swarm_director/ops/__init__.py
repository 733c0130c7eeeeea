"""Operations toolkit: backup, verify, restore, check, optimize, stats, log retention, audit.

Every function here takes an engine (or a :class:`~swarm_director.db.Database`) and plain
arguments, raises :class:`~swarm_director.errors.SwarmError` subclasses for expected failures
and returns small dataclasses the CLI prints as prose or JSON. Nothing here imports Flask or
the CLI.
"""
