"""Editions: the editors' controls as plain data, the edition state machine, editor accounts."""
