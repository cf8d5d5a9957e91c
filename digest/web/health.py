"""`GET /healthz`: `digest serve` is up and its database answers (for probes, the reverse
proxy, `digest doctor`). 200 `{"status": "ok", "database": "ok"}`, or 503 with
`"database": "unavailable"`; never the error itself (it may name the database's host)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from digest.db.engine import sqlite_file
from digest.web.context import Web

router = APIRouter()
log = logging.getLogger(__name__)

# A probe waits this long for the database; a database slower than that is as good as down.
TIMEOUT_SECONDS = 5.0
_HEADERS = {"Cache-Control": "no-store"}


@router.get("/healthz", include_in_schema=False)
async def healthz(web: Web) -> JSONResponse:
    try:
        await asyncio.wait_for(run_in_threadpool(check_database, web.engine), TIMEOUT_SECONDS)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("healthz: database unavailable (%s)", type(exc).__name__)
        body = {"status": "unavailable", "database": "unavailable"}
        return JSONResponse(body, status_code=503, headers=_HEADERS)
    return JSONResponse({"status": "ok", "database": "ok"}, headers=_HEADERS)


def check_database(engine: Engine) -> None:
    """Raise unless the engine's database answers a cheap query on its own schema: a bare
    `SELECT 1` would pass on a SQLite file that was deleted (SQLite creates an empty one)."""
    path = sqlite_file(engine)
    if path is not None and not path.exists():
        raise FileNotFoundError(f"database file {path} is gone")
    with engine.connect() as connection:
        connection.execute(text("SELECT version_num FROM alembic_version")).first()
