"""doctor's SMTP checks against a real aiosmtpd on loopback: plain, STARTTLS, AUTH, SIZE."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from digest.config import Settings
from digest.doctor.report import Check
from digest.doctor.smtp import biggest_message, smtp_checks
from tests.helpers.doctor import certificate, tweak
from tests.helpers.smtp_sink import SmtpSink


def _run(
    settings: Settings, sink_port: int, client_tls: Any = None, **smtp: Any
) -> dict[str, Check]:
    changed = tweak(settings, smtp={"host": "127.0.0.1", "port": sink_port, **smtp})
    return {check.name: check for check in asyncio.run(smtp_checks(changed, client_tls))}


def _statuses(checks: dict[str, Check]) -> dict[str, str]:
    return {name: check.status for name, check in checks.items()}


def test_a_plain_relay_on_loopback_passes_every_step_and_nothing_is_sent(
    settings: Settings,
) -> None:
    with SmtpSink() as sink:
        checks = _run(settings, sink.port)
        assert _statuses(checks) == {
            "smtp": "ok",
            "smtp tls": "ok",
            "smtp auth": "ok",
            "smtp size": "ok",
            "smtp sender": "ok",
        }
        assert "MAIL FROM:<digest@news.example.org> accepted" in checks["smtp sender"].detail
        assert sink.messages == []


def test_an_unreachable_relay_is_one_failure_naming_host_and_port(settings: Settings) -> None:
    with socket.socket() as holder:  # bound, never listening: connections are refused
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        checks = _run(settings, port)
    assert list(checks) == ["smtp"]
    assert checks["smtp"].status == "fail"
    assert f"127.0.0.1:{port}" in checks["smtp"].detail
    assert "smtp.host and smtp.port" in checks["smtp"].fix


def test_starttls_configured_but_not_offered_fails_and_stops(settings: Settings) -> None:
    with SmtpSink() as sink:
        checks = _run(settings, sink.port, starttls=True)
    assert _statuses(checks) == {"smtp": "ok", "smtp tls": "fail"}
    assert "does not offer STARTTLS" in checks["smtp tls"].detail


def test_starttls_and_auth_accepted(settings: Settings, tmp_path: Path) -> None:
    server_tls, client_tls = certificate(tmp_path)
    with SmtpSink(tls_context=server_tls, credentials={"digest": "s3cret"}) as sink:
        checks = _run(
            settings, sink.port, client_tls, starttls=True, username="digest", password="s3cret"
        )
    assert set(_statuses(checks).values()) == {"ok"}, checks
    assert "STARTTLS offered and used" in checks["smtp tls"].detail
    assert "login of 'digest' accepted" in checks["smtp auth"].detail


def test_a_refused_login_fails_with_the_fix(settings: Settings, tmp_path: Path) -> None:
    server_tls, client_tls = certificate(tmp_path)
    with SmtpSink(tls_context=server_tls, credentials={"digest": "s3cret"}) as sink:
        checks = _run(
            settings, sink.port, client_tls, starttls=True, username="digest", password="guess"
        )
    assert _statuses(checks) == {"smtp": "ok", "smtp tls": "ok", "smtp auth": "fail"}
    assert "refused the login of 'digest'" in checks["smtp auth"].detail
    assert "DIGEST_SMTP__PASSWORD" in checks["smtp auth"].fix


def test_a_relay_that_wants_a_login_fails_the_sender_step_when_none_is_set(
    settings: Settings, tmp_path: Path
) -> None:
    server_tls, client_tls = certificate(tmp_path)
    with SmtpSink(tls_context=server_tls, credentials={"digest": "s3cret"}) as sink:
        checks = _run(settings, sink.port, client_tls, starttls=True)
    assert checks["smtp auth"].status == "ok"
    assert checks["smtp sender"].status == "fail"
    assert "530" in checks["smtp sender"].detail
    assert "smtp.username" in checks["smtp sender"].fix


def test_an_untrusted_certificate_fails_the_tls_step(settings: Settings, tmp_path: Path) -> None:
    server_tls, _ = certificate(tmp_path)
    with SmtpSink(tls_context=server_tls) as sink:
        checks = _run(settings, sink.port, None, starttls=True)  # the default trust store
    assert _statuses(checks) == {"smtp": "ok", "smtp tls": "fail"}
    assert "certificate" in checks["smtp tls"].fix


def test_auth_without_tls_accepted_and_refused(settings: Settings) -> None:
    with SmtpSink(credentials={"digest": "s3cret"}) as sink:
        good = _run(settings, sink.port, username="digest", password="s3cret")
        bad = _run(settings, sink.port, username="digest", password="guess")
    assert good["smtp auth"].status == "ok"
    assert bad["smtp auth"].status == "fail"


def test_a_login_configured_for_a_relay_without_auth_fails(settings: Settings) -> None:
    with SmtpSink() as sink:
        checks = _run(settings, sink.port, username="digest", password="s3cret")
    assert checks["smtp auth"].status == "fail"
    assert "offers no AUTH" in checks["smtp auth"].detail


def test_size_too_small_fails_and_a_missing_size_warns(settings: Settings) -> None:
    needed = biggest_message(settings)
    assert needed > settings.render.max_html_bytes * 2 * 4 // 3  # base64 of HTML and text
    with SmtpSink(size_limit=needed - 1) as small, SmtpSink(size_limit=None) as silent:
        too_small = _run(settings, small.port)["smtp size"]
        unknown = _run(settings, silent.port)["smtp size"]
    with SmtpSink(size_limit=needed) as enough:
        fits = _run(settings, enough.port)["smtp size"]
    assert too_small.status == "fail"
    assert f"{needed - 1:,}" in too_small.detail
    assert "render.max_html_bytes" in too_small.fix
    assert unknown.status == "warn"
    assert fits.status == "ok"


def test_tls_and_starttls_together_fail_without_connecting(settings: Settings) -> None:
    checks = _run(settings, 1, starttls=True, tls=True)
    assert _statuses(checks) == {"smtp": "fail"}
    assert "not both" in checks["smtp"].fix


def test_the_envelope_sender_is_on_the_bounce_domain_when_one_is_set(settings: Settings) -> None:
    bounced = tweak(settings, inbound={"domain": "bounces.news.example.org"})
    with SmtpSink() as sink:
        checks = _run(bounced, sink.port)
    assert "b-doctor@bounces.news.example.org" in checks["smtp sender"].detail
