"""`digest serve` and its uvicorn: weak secrets refused, X-Forwarded-For believed only from
trusted proxies, no redirect built from the Host header, tokens hashed in the logs."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Event
from digest.tracking.tokens import Purpose, Signer
from digest.web import create_app
from digest.web.app import server_config
from tests.helpers.paths import ROOT
from tests.helpers.web import (
    add_news,
    deliveries,
    free_socket,
    reader,
    send_digests,
    wait_for,
    with_base_url,
)
from tests.helpers.world import World

STRONG = "a-real-secret-of-some-length-1234567"


def _digest(db_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    command = [sys.executable, "-m", "digest", "--config", str(ROOT / "settings.toml")]
    return subprocess.Popen(
        [*command, "--set", f"database.url={db_url}", *args],
        env={**environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def _port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["serve", "--host", "0.0.0.0"], {}),  # the placeholder of settings.toml, all interfaces
        (["--set", "web.secret_key=short-but-not-a-placeholder", "serve", "--host", "0.0.0.0"], {}),
        (["--set", "web.base_url=https://news.example.org", "serve"], {}),  # links reach others
        (["serve"], {"DIGEST_ENV": "production", "DIGEST_WEB__SECRET_KEY": "x" * 31}),
    ],
)
def test_serve_refuses_a_weak_secret_unless_development_on_loopback(
    db_url: str, engine: Engine, args: list[str], env: dict[str, str]
) -> None:
    # Regression (issue 14, item 10): `digest serve --host 0.0.0.0` with `change-me` started
    # silently, and anyone could sign links. Before the fix this process keeps serving.
    process = _digest(db_url, *args, "--port", _port(), env=env)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("digest serve started with a weak secret")
    assert process.returncode != 0
    assert "DIGEST_WEB__SECRET_KEY" in output and "secrets.token_urlsafe(48)" in output
    assert "Traceback" not in output


def test_serve_on_loopback_in_development_warns_loudly(db_url: str, engine: Engine) -> None:
    process = _digest(db_url, "serve", "--host", "127.0.0.1", "--port", _port())
    assert process.stdout is not None
    seen: list[str] = []
    try:
        for line in process.stdout:
            seen.append(line)
            if "Uvicorn running on" in line:
                break
    finally:
        process.terminate()
        process.communicate(timeout=30)
    output = "".join(seen)
    assert "Uvicorn running on" in output
    assert "web.secret_key is a placeholder" in output and "token_urlsafe(48)" in output


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def serve_with(engine: Engine) -> Iterator[list[Served]]:
    """Start the app under uvicorn exactly as `digest serve` configures it."""
    started: list[Served] = []
    yield started
    for served in started:
        served.server.should_exit = True
        served.thread.join(timeout=30)


def _serve(started: list[Served], settings: Settings, engine: Engine) -> Served:
    sock = free_socket()
    port = sock.getsockname()[1]
    settings = with_base_url(settings, f"http://127.0.0.1:{port}")
    app = create_app(settings, engine)
    server = uvicorn.Server(server_config(app, settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15)
    served = Served(f"http://127.0.0.1:{port}", server, thread)
    started.append(served)
    app.state.web.sleep = _no_wait
    return served


async def _no_wait(_seconds: float) -> None:
    return None


def _with_web(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"web": settings.web.model_copy(update=changes)})


def _login_attempts(url: str, forwarded: list[str]) -> list[int]:
    """Failed logins, each claiming another client address; their statuses."""
    statuses = []
    with httpx.Client(base_url=url) as browser:
        page = browser.get("/editor/login").text
        token = page.split('name="csrf" value="')[1].split('"')[0]
        for address in forwarded:
            answer = browser.post(
                "/editor/login",
                data={"csrf": token, "email": "nobody@example.org", "password": "wrong"},
                headers={"X-Forwarded-For": address},
            )
            statuses.append(answer.status_code)
    return statuses


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    engine: Engine, web_settings: Settings, serve_with: list[Served]
) -> None:
    # Regression (issue 14, item 12): uvicorn believed X-Forwarded-For from loopback, so a
    # local client (or anyone behind a proxy that does not set it) chose its own address and
    # was never rate limited.
    forged = [f"203.0.113.{n}" for n in range(12)]
    default = _serve(serve_with, web_settings, engine)
    statuses = _login_attempts(default.url, forged)  # 10 per address: all count as one
    assert statuses == [400] * 10 + [429] * 2
    trusting = _serve(serve_with, _with_web(web_settings, trusted_proxies=["127.0.0.1"]), engine)
    assert 429 not in _login_attempts(trusting.url, forged)  # each proxied client counts apart


def test_an_open_records_the_proxied_address_only_behind_a_trusted_proxy(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    serve_with: list[Served],
) -> None:
    reader(session, world, "reem@example.org", ["politics"])
    add_news(session, world)
    send_digests(engine, world, web_settings)
    (delivery,) = deliveries(engine)
    pixel = f"/o/{Signer(web_settings.web.secret_key).dumps(Purpose.OPEN, delivery.id or 0)}.gif"
    default = _serve(serve_with, web_settings, engine)
    trusting = _serve(
        serve_with, _with_web(web_settings, trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"]), engine
    )
    header = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.1.2.3"}
    assert httpx.get(default.url + pixel, headers=header).status_code == 200
    assert httpx.get(trusting.url + pixel, headers=header).status_code == 200

    def addresses() -> list[str | None]:
        with Session(engine) as s:
            return sorted(str(e.ip) for e in s.exec(select(Event)))

    wait_for(lambda: len(addresses()) == 2)
    assert addresses() == ["127.0.0.1", "203.0.113.9"]  # the rightmost untrusted hop


def test_a_trailing_slash_never_redirects_to_the_host_header(
    engine: Engine, web_settings: Settings, serve_with: list[Served]
) -> None:
    # Regression (issue 14, item 14): `/editor/` answered 307 to http://<Host header>/editor.
    served = _serve(serve_with, web_settings, engine)
    for path in ("/editor/", "/editor/login/", "//evil.example/", "/subscribe/"):
        answer = httpx.get(served.url + path, headers={"Host": "evil.example"})
        assert answer.status_code == 404, path
        assert "evil" not in answer.headers.get("location", "")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_logs_hold_a_short_hash_of_tokens_never_the_token(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    serve_with: list[Served],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Regression (issue 14, item 14): the error log printed the first 40 characters of the
    # path, a whole unsubscribe or view token.
    reader(session, world, "reem@example.org", ["politics"])
    add_news(session, world)
    send_digests(engine, world, web_settings)
    (delivery,) = deliveries(engine)
    token = Signer(web_settings.web.secret_key).dumps(Purpose.VIEW, delivery.id or 0)
    served = _serve(serve_with, _with_web(web_settings, access_log=True), engine)
    access = _Lines()
    logging.getLogger("uvicorn.access").addHandler(access)
    try:
        with engine.begin() as connection:  # a real failure on a token's path: a 500
            connection.execute(text("DROP TABLE link"))
            connection.execute(text("ALTER TABLE delivery RENAME TO delivery_gone"))
        with caplog.at_level(logging.ERROR):
            assert httpx.get(f"{served.url}/v/{token}").status_code == 500
        wait_for(lambda: any("/v/" in line for line in access.lines))
    finally:
        logging.getLogger("uvicorn.access").removeHandler(access)
    logged = caplog.text + "\n".join(access.lines)
    assert "error serving /v/tok#" in caplog.text
    assert token not in logged and token.split(".")[1] not in logged
