"""The scheduler's ingest job: one feed's failure of any kind is that feed's, the job goes on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from digest.config import Settings
from digest.db.engine import session_scope
from digest.ingest import feeds
from digest.schedule import jobs as jobs_module
from digest.schedule.jobs import Jobs
from tests.helpers.feed_docs import rss
from tests.helpers.feed_server import Route, serving


def test_a_feed_that_raises_is_counted_and_the_others_are_ingested(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving() as server:
        for path in ("/a", "/b", "/c"):
            item = {"title": f"خبر {path}", "link": f"https://news.example.org{path}"}
            server.routes[path] = Route(rss([item]))
            with session_scope(engine) as session:
                feeds.add_feed(session, url=server.url(path))
        real = jobs_module.ingest

        def flaky(engine: Engine, ingest_settings: Any, *, only: str, **kwargs: Any) -> Any:
            if only.endswith("/a"):
                raise RuntimeError("the feed was removed meanwhile")
            if only.endswith("/b"):
                raise RecursionError("a bug on a hostile document")
            return real(engine, ingest_settings, only=only, **kwargs)

        monkeypatch.setattr(jobs_module, "ingest", flaky)
        counts = Jobs(engine, settings).ingest()  # raised on the first feed before
    assert counts == {"feeds": 3, "new": 1, "updated": 0, "feeds_failed": 2}
