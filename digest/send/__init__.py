"""Sending: outcomes, MIME, SMTP, the outbox (plan, claim, record), the dispatcher and workers."""
