"""Runs every check in order, each on its own: one that fails never hides the next, except
that nothing runs on settings that do not load."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.exc import SQLAlchemyError

from digest.config import Settings
from digest.doctor.alignment import alignment_check
from digest.doctor.configuration import load_check, postal_address_check, secret_check
from digest.doctor.database import open_engine, schema_check, subscriber_zones
from digest.doctor.dkim import dkim_check
from digest.doctor.report import Check
from digest.doctor.smtp import smtp_checks
from digest.doctor.templates import templates_check
from digest.doctor.web import base_url_check, healthz_check
from digest.doctor.zones import zones_check


@dataclass(frozen=True)
class Probes:
    """How doctor reaches the outside: a TLS context for the relay (a private CA) and an
    HTTP transport for /healthz; None means the defaults."""

    smtp_tls_context: ssl.SSLContext | None = None
    http_transport: httpx.BaseTransport | None = None


def diagnose(load: Callable[[], Settings], probes: Probes | None = None) -> list[Check]:
    """Every check, in the order an operator fixes things: settings, secrets, database, time
    zones, SMTP, web, DKIM, alignment, templates."""
    probes = probes or Probes()
    loaded, settings = load_check(load)
    if settings is None:
        return [loaded]
    checks = [loaded, secret_check(settings), postal_address_check(settings)]
    database, zones = _database(settings)
    checks += [database, zones_check(settings, zones)]
    checks += asyncio.run(smtp_checks(settings, probes.smtp_tls_context))
    checks += [
        base_url_check(settings),
        healthz_check(settings, probes.http_transport),
        dkim_check(settings),
        alignment_check(settings),
        templates_check(settings),
    ]
    return checks


def _database(settings: Settings) -> tuple[Check, set[str]]:
    """The schema check, and the subscribers' time zones when the schema is current."""
    engine = open_engine(settings)
    if isinstance(engine, Check):
        return engine, set()
    try:
        check = schema_check(engine)
        zones: set[str] = set()
        if check.status == "ok":
            # The schema is current, so this should work; if not, zones_check does without.
            with contextlib.suppress(SQLAlchemyError):
                zones = subscriber_zones(engine)
        return check, zones
    finally:
        engine.dispose()
