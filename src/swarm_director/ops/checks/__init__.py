"""``db check`` (integrity and domain rules) and ``db validate-schema`` (drift from the models)."""
