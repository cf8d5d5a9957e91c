"""`diagnose`: every check in order, nothing after settings that do not load, and the
probes (a private CA for the relay) passed through."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from digest.config import Settings
from digest.doctor.runner import Probes, diagnose
from digest.errors import ConfigError
from tests.helpers.doctor import certificate, health_server, tweak
from tests.helpers.smtp_sink import SmtpSink


def test_settings_that_do_not_load_end_the_diagnosis() -> None:
    def load() -> Settings:
        raise ConfigError("settings.toml: env: must be development or production")

    [check] = diagnose(load)
    assert (check.name, check.status) == ("settings", "fail")


def test_every_check_runs_with_the_relays_private_ca(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    server_tls, client_tls = certificate(tmp_path)
    with SmtpSink(tls_context=server_tls) as sink, health_server() as web:
        changed = tweak(settings, smtp={"port": sink.port, "starttls": True}, web={"base_url": web})
        checks = diagnose(lambda: changed, Probes(smtp_tls_context=client_tls))
    statuses = {check.name: check.status for check in checks}
    assert len(statuses) == len(checks) == 15
    assert statuses["smtp tls"] == "ok"
    assert statuses["database"] == statuses["web healthz"] == statuses["templates"] == "ok"
    assert statuses["dkim"] == "warn"  # no key in settings.toml
