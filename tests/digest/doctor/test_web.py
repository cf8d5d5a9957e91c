"""doctor's web checks: https in production, and a live /healthz at web.base_url."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import Engine

from digest.config import Settings
from digest.doctor.web import base_url_check, healthz_check
from tests.helpers.doctor import health_server, tweak
from tests.helpers.web import start_live


def test_https_is_ok_and_http_fails_in_production(settings: Settings) -> None:
    https = tweak(settings, top={"env": "production"}, web={"base_url": "https://n.example.org"})
    http = tweak(settings, top={"env": "production"}, web={"base_url": "http://n.example.org"})
    assert base_url_check(https).status == "ok"
    failed = base_url_check(http)
    assert failed.status == "fail"
    assert "web.base_url" in failed.fix


def test_http_in_development_is_ok_on_loopback_and_warns_elsewhere(settings: Settings) -> None:
    assert base_url_check(settings).status == "ok"  # http://127.0.0.1:8000
    public = tweak(settings, web={"base_url": "http://news.example.org"})
    assert base_url_check(public).status == "warn"


def test_a_live_healthz_is_ok(settings: Settings) -> None:
    with health_server(200) as url:
        check = healthz_check(tweak(settings, web={"base_url": url}))
    assert check.status == "ok"
    assert f"{url}/healthz answers 200 (digest serve" in check.detail


def test_the_web_app_under_uvicorn_answers_healthz(settings: Settings, engine: Engine) -> None:
    server = start_live(settings, engine)
    try:
        check = healthz_check(tweak(settings, web={"base_url": server.url}))
    finally:
        server.stop()
    assert check.status == "ok", check


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b"<html>a CMS page</html>"), (200, b'{"status":"ok"}'), (302, b"")],
    ids=["another-app", "not-ours", "redirect"],
)
def test_a_200_that_is_not_digest_serve_fails(settings: Settings, status: int, body: bytes) -> None:
    with health_server(status, body) as url:
        check = healthz_check(tweak(settings, web={"base_url": url}))
    assert check.status == "fail", check
    assert str(status) in check.detail


def test_an_unhealthy_answer_fails(settings: Settings) -> None:
    with health_server(503) as url:
        check = healthz_check(tweak(settings, web={"base_url": url}))
    assert check.status == "fail"
    assert "503" in check.detail


def test_nothing_listening_is_a_warning_not_a_failure(settings: Settings) -> None:
    with socket.socket() as holder:  # bound, never listening: connections are refused
        holder.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{holder.getsockname()[1]}"
        check = healthz_check(tweak(settings, web={"base_url": url}))
    assert check.status == "warn"
    assert "digest serve" in check.fix
