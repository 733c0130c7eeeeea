"""Operations toolkit: what ``swarm-director db ...`` and the admin pages run.

Every function here takes an engine (or a :class:`~swarm_director.db.Database`) and plain
arguments, raises :class:`~swarm_director.errors.SwarmError` subclasses for expected failures
and returns small dataclasses the CLI prints as prose or JSON. Nothing here imports Flask or
the CLI.

- ``backup/``: create, verify and restore backups; their manifests, temporary files, pg tools
- ``crypto/``: age encryption of backups and archives; the older ``SDBKENC1`` format (read)
- ``checks/``: ``db check`` (storage and domain rules) and schema drift from the models
- ``retention/``: log cleanup (policy, archive, batched deletes, partition drops, space),
  history retention, expiry of idempotency keys and console sessions
- ``stats/``: ``db stats`` and the statement timings every server process records
- ``maintain``, ``optimize`` (with the WAL checkpoint), ``schema_export``: one command each
- ``audit``, ``dbinfo``, ``artifact``, ``errors``: shared by the packages above
"""
