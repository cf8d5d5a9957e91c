"""`digest inbound process`: files and stdin in, one summary line per kind out, and exit
statuses an MTA understands (0 processed, 75 try again later, 64/65/66 refused)."""

from __future__ import annotations

import json
import mailbox
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import Result

from digest.cli import app
from digest.config import Settings
from digest.db.models import Delivery, InboundEvent, InboundMessage
from digest.inbound.process import Processor
from digest.tracking.verp import Verp, VerpKind
from subscribers.people import is_suppressed
from tests.helpers import inbox
from tests.helpers.cli import Cli
from tests.helpers.dblock import write_locked
from tests.helpers.paths import ROOT
from tests.helpers.sent import NOW, deliver, sent_world

DOMAIN = "bounces.example.org"


def _sent(session: Session) -> tuple[Delivery, Delivery]:
    sent = sent_world(session, 2)
    return (
        deliver(session, sent, "r0@example.org", NOW - timedelta(hours=1)),
        deliver(session, sent, "r1@example.org", NOW - timedelta(hours=1)),
    )


def _maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(path)
    for raw in messages:
        box.add(raw)
    return path


def _run(
    cli: Cli, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    # Bytes on stdin, as an MTA's pipe gives them; the environment of its pipe, if any.
    return cli.runner.invoke(
        app,
        ["--config", str(ROOT / "settings.toml"), "--set", f"database.url={cli.db_url}", *args],
        input=stdin,
        env=env,
    )


def test_a_maildir_and_an_mbox_are_processed_with_one_line_per_kind(
    cli: Cli, session: Session, tmp_path: Path
) -> None:
    first, second = _sent(session)
    maildir = _maildir(
        tmp_path / "Maildir",
        [inbox.hard_bounce(first, "r0@example.org"), inbox.personal_note()],
    )
    box = mailbox.mbox(tmp_path / "old.mbox")
    box.add(inbox.complaint(second, "r1@example.org"))
    box.add(inbox.auto_reply("r1@example.org"))
    box.close()
    result = _run(cli, "inbound", "process", str(maildir), str(tmp_path / "old.mbox"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "processed 4 message(s)",
        "hard_bounce 1",
        "complaint 1",
        "auto_reply 1",
        "unknown 1",
    ]
    session.expire_all()
    assert is_suppressed(session, "r0@example.org") and is_suppressed(session, "r1@example.org")
    again = _run(cli, "inbound", "process", "--json", str(maildir), str(tmp_path / "old.mbox"))
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["messages"] == 4 and summary["duplicates"] == 4
    assert set(summary["kinds"].values()) == {0} and summary["exit_status"] == 0
    assert len(session.exec(select(InboundEvent)).all()) == 4  # stored once


@pytest.mark.parametrize("how", ["--recipient", "ORIGINAL_RECIPIENT", "X-Original-To"])
def test_stdin_from_an_mta_sees_the_u_recipient_wherever_the_mta_put_it(
    cli: Cli, session: Session, settings: Settings, how: str
) -> None:
    first, _ = _sent(session)
    address = Verp(settings.web.secret_key, DOMAIN).address(VerpKind.UNSUBSCRIBE, first.id or 0)
    body = b"From: r0@example.org\r\nTo: someone@example.net\r\nSubject: stop\r\n\r\nplease\r\n"
    args = ["inbound", "process", "-"]
    env: dict[str, str] = {}
    if how == "--recipient":
        args[2:2] = ["--sender", "r0@example.org", "--recipient", address]
    elif how == "ORIGINAL_RECIPIENT":  # Postfix local(8), an alias `| digest inbound process -`
        env = {"SENDER": "r0@example.org", "ORIGINAL_RECIPIENT": address}
    else:  # Postfix pipe(8) with flags=DOR
        body = f"Return-Path: <r0@example.org>\r\nX-Original-To: {address}\r\n".encode() + body
    result = _run(cli, *args, stdin=body, env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["processed 1 message(s)", "unsubscribe 1"]
    event = session.exec(select(InboundEvent)).one()
    assert event.source == "stdin" and event.delivery_id == first.id


def test_a_locked_database_exits_75_so_the_mta_retries_and_the_retry_is_processed(
    cli: Cli, engine: Engine, session: Session
) -> None:
    first, _ = _sent(session)
    bounce = inbox.hard_bounce(first, "r0@example.org")
    args = ("--set", "database.busy_timeout_seconds=0.2", "inbound", "process", "-")
    with write_locked(engine):
        result = _run(cli, *args, stdin=bounce)
    assert result.exit_code == 75, result.output
    assert "database unavailable" in result.stderr
    assert session.exec(select(InboundEvent)).all() == []  # nothing half-written
    retried = _run(cli, *args, stdin=bounce)
    assert retried.exit_code == 0, retried.output
    assert "hard_bounce 1" in retried.stdout


def test_a_database_that_is_not_there_exits_75(cli: Cli, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'elsewhere' / 'digest.sqlite3'}"
    result = _run(cli, "--set", f"database.url={missing}", "inbound", "process", "-", stdin=b"x")
    assert result.exit_code == 75, result.output
    assert "digest db upgrade" in result.stderr


def test_refused_input_exits_64_65_or_66_and_the_readable_rest_is_processed(
    cli: Cli, tmp_path: Path
) -> None:
    assert _run(cli, "inbound", "process").exit_code == 64
    assert _run(cli, "inbound", "process", "-", "-", stdin=b"x").exit_code == 64
    assert _run(cli, "inbound", "process", "-", stdin=b"").exit_code == 65
    good = tmp_path / "note.eml"
    good.write_bytes(inbox.personal_note())
    result = _run(cli, "inbound", "process", str(tmp_path / "nope.eml"), str(good))
    assert result.exit_code == 66
    assert f"skipped {tmp_path / 'nope.eml'}: no such file or directory" in result.stderr
    assert result.stdout.splitlines() == ["processed 1 message(s)", "unknown 1", "unreadable 1"]


def test_a_message_over_the_cap_is_named_skipped_and_not_a_failure(
    cli: Cli, tmp_path: Path
) -> None:
    big = tmp_path / "big.eml"
    big.write_bytes(inbox.personal_note() + b"x" * 20_000)
    result = _run(cli, "--set", "inbound.max_message_bytes=10000", "inbound", "process", str(big))
    assert result.exit_code == 0, result.output
    assert f"skipped {big}: larger than [inbound] max_message_bytes" in result.stderr
    assert result.stdout.splitlines() == ["processed 0 message(s)", "too_large 1 (skipped)"]


def test_an_envelope_sender_that_was_not_utf8_is_stored(cli: Cli, session: Session) -> None:
    # argv and the environment decode non-UTF-8 bytes as lone surrogates: never a crash.
    first, _ = _sent(session)
    bounce = inbox.hard_bounce(first, "r0@example.org")
    result = _run(cli, "inbound", "process", "-", stdin=bounce, env={"SENDER": "caf\udce9@x.org"})
    assert result.exit_code == 0, result.output
    stored = session.exec(select(InboundMessage)).one()
    assert stored.envelope_from == "caf\ufffd@x.org"


def test_any_other_failure_exits_75_so_the_mta_keeps_the_mail(
    cli: Cli, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _sent(session)

    def broken(self: Processor, batch: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Processor, "process", broken)
    result = _run(cli, "inbound", "process", "-", stdin=inbox.hard_bounce(first, "r0@example.org"))
    assert result.exit_code == 75, result.output
    assert "processing failed (RuntimeError)" in result.stderr
