"""The scheduler's inbound job: scheduled only when `[inbound.imap] host` is set, every
`poll_minutes` on round times, before dispatch; `digest scheduler --once` polls Dovecot."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine

from digest.config import Settings
from digest.schedule.jobs import Jobs
from digest.schedule.scheduler import job_specs
from tests.helpers import dovecot, inbox
from tests.helpers.cli import Cli


def _with_imap(settings: Settings, **imap: object) -> Settings:
    changed = settings.inbound.imap.model_copy(update=imap)
    inbound = settings.inbound.model_copy(update={"imap": changed})
    return settings.model_copy(update={"inbound": inbound})


def test_the_inbound_job_is_scheduled_only_when_an_imap_host_is_set(settings: Settings) -> None:
    def names(chosen: Settings) -> list[str]:
        jobs = Jobs(create_engine("sqlite://"), chosen)
        return [spec.name for spec in job_specs(jobs, chosen.scheduler)]

    assert "inbound" not in names(settings)
    polling = _with_imap(settings, host="imap.example.net", password="x", poll_minutes=10)
    assert names(polling) == ["ingest", "inbound", "dispatch", "retry", "housekeeping"]
    jobs = Jobs(create_engine("sqlite://"), polling)
    spec = next(s for s in job_specs(jobs, polling.scheduler) if s.name == "inbound")
    started = datetime(2026, 11, 29, 10, 3, 27, tzinfo=UTC)
    assert spec.trigger.get_next_fire_time(started, started) == datetime(
        2026, 11, 29, 10, 10, tzinfo=UTC
    )
    assert spec.grace_seconds == 600
    assert spec.work == jobs.inbound
    assert Jobs(create_engine("sqlite://"), settings).inbound() == {}  # no host: nothing


@pytest.fixture
def imap_server() -> Iterator[dovecot.Server]:
    with dovecot.server_or_missing() as server:
        yield server


def test_scheduler_once_polls_the_mailbox_with_the_password_from_the_environment(
    cli: Cli,
    imap_server: dovecot.Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    dovecot.deliver(imap_server, inbox.auto_reply("r0@example.org"), "away")
    monkeypatch.setenv("DIGEST_INBOUND__IMAP__PASSWORD", dovecot.PASSWORD)
    imap = {
        "host": "127.0.0.1",
        "port": str(imap_server.port),
        "tls": "false",
        "user": dovecot.USER,
    }
    overrides = [
        arg for key, value in imap.items() for arg in ("--set", f"inbound.imap.{key}={value}")
    ]
    cli.ok(*overrides, "scheduler", "--once")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job=")]
    assert [line.split()[0] for line in lines][:2] == ["job=ingest", "job=inbound"]
    assert "status=ok" in lines[1] and "messages=1" in lines[1] and "auto_reply=1" in lines[1]
    assert len(imap_server.messages("Processed")) == 1
