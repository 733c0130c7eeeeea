"""Schema commands: init, upgrade, downgrade, current, history, seed, reset, status, ..."""
