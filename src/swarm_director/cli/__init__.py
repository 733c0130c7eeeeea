"""The ``swarm-director`` command line (Click)."""
