"""IMAP polling against a real Dovecot on loopback: processed mail moves out, unknown mail
goes to a person's folder, nothing is deleted or marked read, a second poll does nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings, load_settings
from digest.db.engine import make_engine
from digest.inbound.imap import connect, poll, quote
from digest.inbound.process import Handled, Processor
from digest.inbound.sources import mailbox_message
from digest.inbound.verdicts import Received, Source
from digest.schedule.jobs import Jobs
from digest.tracking.verp import Verp, VerpKind
from subscribers.people import is_suppressed
from tests.helpers import dovecot, inbox
from tests.helpers.dblock import write_locked
from tests.helpers.paths import ROOT
from tests.helpers.sent import NOW, Sent, deliver, sent_world

FOLDERS = ("INBOX", "Processed", "Needs-human")


@pytest.fixture
def imap_server() -> Iterator[dovecot.Server]:
    with dovecot.server_or_missing() as server:
        yield server


def _settings(db_url: str, server: dovecot.Server, **more: str) -> Settings:
    return load_settings(
        ROOT / "settings.toml",
        {
            "database.url": db_url,
            "database.busy_timeout_seconds": "0.2",
            "inbound.imap.host": "127.0.0.1",
            "inbound.imap.port": str(server.port),
            "inbound.imap.tls": "false",
            "inbound.imap.user": dovecot.USER,
            "inbound.imap.password": dovecot.PASSWORD,
            "inbound.imap.timeout": "10",
            **more,
        },
    )


def _returns(session: Session, settings: Settings, server: dovecot.Server) -> Sent:
    """Two readers got today's digest; back come r0's hard bounce (to its b- address), r1's
    complaint, r1's out-of-office and a person's note."""
    sent = sent_world(session, 2)
    first = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=2))
    second = deliver(session, sent, "r1@example.org", NOW - timedelta(hours=2))
    verp = Verp(settings.web.secret_key, "bounces.example.org")
    mail = {
        "1.bounce": inbox.hard_bounce(
            first, "r0@example.org", verp=verp.address(VerpKind.BOUNCE, first.id or 0)
        ),
        "2.complaint": inbox.complaint(second, "r1@example.org"),
        "3.away": inbox.auto_reply("r1@example.org"),
        "4.note": inbox.personal_note(),
    }
    for name, raw in mail.items():
        dovecot.deliver(server, raw, name)
    return sent


def _where(server: dovecot.Server) -> dict[str, int]:
    return {name: len(server.messages(name)) for name in FOLDERS}


def _seen(server: dovecot.Server, folder: str) -> list[str]:
    # Maildir keeps the flags in the name (":2,S" is \Seen).
    found = server.folder(folder)
    return [p.name for p in (found / "cur").glob("*:2,*S*")] if (found / "cur").exists() else []


def test_a_poll_applies_and_moves_each_message_and_a_second_poll_does_nothing(
    engine: Engine, session: Session, db_url: str, imap_server: dovecot.Server
) -> None:
    settings = _settings(db_url, imap_server)
    _returns(session, settings, imap_server)
    counts = Jobs(engine, settings, clock=lambda: NOW).inbound()
    assert counts == {
        "messages": 4,
        "hard_bounce": 1,
        "complaint": 1,
        "auto_reply": 1,
        "unknown": 1,
        "duplicates": 0,
        "too_large": 0,
        "failed": 0,
    }
    session.expire_all()
    assert is_suppressed(session, "r0@example.org")  # the hard bounce
    assert is_suppressed(session, "r1@example.org")  # the complaint
    # Nothing deleted, nothing marked read; the note waits for a person.
    assert _where(imap_server) == {"INBOX": 0, "Processed": 3, "Needs-human": 1}
    assert b"could you tell me" in imap_server.messages("Needs-human")[0]
    assert not any(_seen(imap_server, folder) for folder in FOLDERS)
    again = Jobs(engine, settings, clock=lambda: NOW).inbound()
    assert again["messages"] == 0 and again["failed"] == 0
    assert _where(imap_server) == {"INBOX": 0, "Processed": 3, "Needs-human": 1}


@pytest.mark.parametrize("locked", ["database", "server"])
def test_when_the_database_or_the_server_is_away_nothing_moves_and_the_next_poll_takes_them(
    engine: Engine,
    session: Session,
    db_url: str,
    imap_server: dovecot.Server,
    caplog: pytest.LogCaptureFixture,
    locked: str,
) -> None:
    settings = _settings(db_url, imap_server)
    _returns(session, settings, imap_server)
    jobs = Jobs(make_engine(db_url, busy_timeout_seconds=0.2), settings, clock=lambda: NOW)
    if locked == "database":
        with write_locked(engine):
            assert jobs.inbound() == {"failed": 1}
        assert "database unavailable" in caplog.text
    else:
        wrong = settings.inbound.imap.model_copy(update={"password": "not-it"})
        inbound = settings.inbound.model_copy(update={"imap": wrong})
        refused = Jobs(engine, settings.model_copy(update={"inbound": inbound}))
        assert refused.inbound() == {"failed": 1}
        assert "IMAP 127.0.0.1" in caplog.text and "not-it" not in caplog.text
    assert _where(imap_server) == {"INBOX": 4, "Processed": 0, "Needs-human": 0}
    assert not _seen(imap_server, "INBOX")  # BODY.PEEK[]: still unread for a person
    assert jobs.inbound()["messages"] == 4
    assert _where(imap_server) == {"INBOX": 0, "Processed": 3, "Needs-human": 1}


def test_a_message_processed_twice_is_a_duplicate_and_changes_nothing(
    engine: Engine, session: Session, db_url: str, imap_server: dovecot.Server
) -> None:
    # A crash after storing and before moving: the next poll takes them again.
    settings = _settings(db_url, imap_server)
    _returns(session, settings, imap_server)
    processor = Processor(engine, settings, clock=lambda: NOW)
    processor.process([mailbox_message(raw, Source.IMAP) for raw in imap_server.messages("INBOX")])
    tally = poll(settings.inbound.imap, processor.process, max_bytes=10_000_000)
    assert tally.duplicates == 4 and tally.messages == 4
    assert _where(imap_server) == {"INBOX": 0, "Processed": 3, "Needs-human": 1}


def test_without_move_it_copies_flags_and_expunges_only_its_own_uids(
    engine: Engine, session: Session, db_url: str, imap_server: dovecot.Server
) -> None:
    settings = _settings(db_url, imap_server)
    _returns(session, settings, imap_server)
    config = settings.inbound.imap
    with connect(config) as mailbox:
        # Somebody else marked a message deleted and has not expunged it yet.
        mailbox.connection.append(quote("INBOX"), r"(\Deleted)", None, inbox.personal_note())
        assert {"MOVE", "UIDPLUS"} <= mailbox.capabilities
        mailbox.capabilities.discard("MOVE")
        processor = Processor(engine, settings, clock=lambda: NOW)
        tally = poll(config, processor.process, max_bytes=10_000_000, mailbox=mailbox)
    assert tally.messages == 4
    assert _where(imap_server) == {"INBOX": 1, "Processed": 3, "Needs-human": 1}


def test_a_message_over_the_size_cap_goes_to_a_person_unread(
    engine: Engine, session: Session, db_url: str, imap_server: dovecot.Server
) -> None:
    settings = _settings(db_url, imap_server, **{"inbound.max_message_bytes": "10000"})
    dovecot.deliver(imap_server, inbox.personal_note() + b"x" * 20_000, "big")
    dovecot.deliver(imap_server, inbox.auto_reply("r0@example.org"), "small")
    counts = Jobs(engine, settings, clock=lambda: NOW).inbound()
    assert counts["too_large"] == 1 and counts["auto_reply"] == 1
    assert _where(imap_server) == {"INBOX": 0, "Processed": 1, "Needs-human": 1}


def test_folders_are_created_once_with_names_in_any_script(
    engine: Engine, db_url: str, imap_server: dovecot.Server
) -> None:
    settings = _settings(db_url, imap_server, **{"inbound.imap.human_folder": "للمراجعة & co"})
    config = settings.inbound.imap
    for _ in range(2):
        tally = poll(config, Processor(engine, settings).process, max_bytes=10_000_000)
        assert tally.messages == 0
    with connect(config) as mailbox:
        _, data = mailbox.connection.list()
    names = b" ".join(d for d in data if isinstance(d, bytes))
    assert b"Processed" in names and quote("للمراجعة & co").encode()[1:-1] in names


def test_a_message_that_breaks_the_processor_goes_to_a_person_and_the_rest_is_processed(
    engine: Engine, session: Session, db_url: str, imap_server: dovecot.Server
) -> None:
    # A bug in reading one message must not hold the mailbox back poll after poll.
    settings = _settings(db_url, imap_server)
    _returns(session, settings, imap_server)
    processor = Processor(engine, settings, clock=lambda: NOW)

    def process(batch: Sequence[Received]) -> list[Handled]:
        if any(b"could you tell me" in received.raw for received in batch):
            raise RuntimeError("a bug")
        return processor.process(batch)

    tally = poll(settings.inbound.imap, process, max_bytes=10_000_000)
    assert tally.messages == 3 and len(tally.unreadable) == 1
    assert _where(imap_server) == {"INBOX": 0, "Processed": 3, "Needs-human": 1}
