"""`GET /healthz` of `digest serve`: 200 while the database answers, 503 once it is gone; the
real `digest serve` answers it and writes its log (uvicorn's lines too) as JSON lines."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from digest.db.engine import sqlite_file
from tests.helpers.databases import ON_POSTGRES, admin
from tests.helpers.paths import ROOT
from tests.helpers.web import wait_for


def test_healthz_says_ok_while_the_database_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_healthz_is_503_once_the_database_is_gone(
    client: TestClient, engine: Engine, db_url: str, request: pytest.FixtureRequest
) -> None:
    assert client.get("/healthz").status_code == 200  # a pooled connection is open
    if ON_POSTGRES:
        name = db_url.rsplit("/", 1)[1]
        admin(request.getfixturevalue("pg_server"), f"DROP DATABASE {name} WITH (FORCE)")
    else:
        path = sqlite_file(engine)
        assert path is not None
        for gone in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            gone.unlink(missing_ok=True)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}


def test_digest_serve_answers_healthz_and_logs_json_lines(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "digest", "--config", str(ROOT / "settings.toml")]
    overrides = ["--set", f"database.url={db_url}", "--set", "log.format=json"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, *overrides, "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
    try:
        wait_for(lambda: "Uvicorn running on" in log.read_text(encoding="utf-8"), timeout=30)
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert (response.status_code, response.json()["database"]) == (200, "ok")
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn stops cleanly, then raises the signal again: systemd counts SIGTERM as clean.
    assert process.returncode in (0, -signal.SIGTERM), errors
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    loggers = {record["logger"] for record in records}
    assert {"uvicorn.error", "digest.web.app"} <= loggers  # uvicorn's, and our secret warning
    assert all(set(record) >= {"time", "level", "logger", "message"} for record in records)
