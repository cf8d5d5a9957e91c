"""Tracking: signed tokens, machine-open detection, per-edition figures, retention of raw events."""
