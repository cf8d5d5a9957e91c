"""Web app fixtures: quick-flush settings, a list whose readers are always due, a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.web import create_app
from tests.helpers.world import World, make_world


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    """Settings with a quick event flush (tests wait for it)."""
    web = settings.web.model_copy(update={"event_flush_seconds": 0.05})
    return settings.model_copy(update={"web": web})


@pytest.fixture
def world(session: Session) -> World:
    """A daily list (politics, economy, sports) whose readers are due at any hour (UTC, 0 h)."""
    return make_world(session, hour=0)


@pytest.fixture
def client(web_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings, engine), follow_redirects=False) as test_client:
        yield test_client
