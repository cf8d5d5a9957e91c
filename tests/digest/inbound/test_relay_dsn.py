"""End to end through a real relay: `digest send` hands a digest to a local Postfix, the
recipient's server (aiosmtpd) refuses it after DATA, Postfix returns a real DSN to the VERP
envelope sender, and `digest inbound` takes it and suppresses the address."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from digest.config import Settings
from digest.db.models import Delivery, InboundEvent, InboundKind
from digest.tracking.verp import Verp, VerpKind, VerpRef
from subscribers.models import Suppression, SuppressionReason
from tests.helpers.cli import Cli
from tests.helpers.postfix import Postfix
from tests.helpers.smtp_sink import EVERYONE, SmtpSink
from tests.helpers.world import add_article, add_reader, make_world

BOUNCES = "bounces.example.org"
READER = "reem@example.org"
WAIT = 60.0  # bounded polls: a loaded machine may be slow, a broken one fails here
T = TypeVar("T")


def _poll(what: str, check: Callable[[], T | None], timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def _digest_due(session: Session) -> None:
    """One reader with a digest due now (hour 0 UTC: due whenever the test runs)."""
    world = make_world(session, hour=0)
    add_reader(session, world, READER, ["politics"], timezone="UTC")
    add_article(
        session, world, "انتخابات بلدية", ["politics"], datetime.now(UTC) - timedelta(hours=1)
    )


def _send_through(cli: Cli, relay: Postfix) -> None:
    result = cli.ok(
        "--set",
        f"smtp.port={relay.port}",
        "--set",
        f"inbound.domain={BOUNCES}",
        "send",
        "--list",
        "daily",
        "--json",
    )
    assert '"sent": 1' in result.stdout, result.stdout


def _delivery(session: Session) -> Delivery:
    session.expire_all()
    (delivery,) = session.exec(select(Delivery)).all()
    assert delivery.status == "sent"  # the relay took it: the refusal comes later, by mail
    return delivery


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_relay_returns_a_real_dsn_to_the_verp_envelope_sender(
    cli: Cli, session: Session, settings: Settings
) -> None:
    # The harness alone: a plain sink stands where `digest inbound` will listen.
    _digest_due(session)
    with SmtpSink() as refusing, SmtpSink() as bounces:
        refusing.refuse(EVERYONE, 550, at="DATA")
        with Postfix({"example.org": refusing.port, BOUNCES: bounces.port}) as relay:
            _send_through(cli, relay)
            _poll("the DSN", lambda: bounces.messages or None)
            relay.wait_for("status=bounced")
        (dsn,) = bounces.messages
    delivery = _delivery(session)
    verp = Verp(settings.web.secret_key, BOUNCES)
    assert dsn.mail_from in {"", "<>"}  # a bounce has the null sender
    (rcpt,) = dsn.rcpt_tos
    assert verp.check_address(rcpt) == VerpRef(VerpKind.BOUNCE, delivery.id or 0)
    report = _parse(dsn.data)
    assert report.get_content_type() == "multipart/report"
    parts = {part.get_content_type(): part for part in report.iter_parts()}
    status = parts["message/delivery-status"].as_string()
    assert "Status: 5.1.1" in status and f"Final-Recipient: rfc822; {READER}" in status
    returned = parts["message/rfc822"].get_content()  # the digest, returned in full
    assert isinstance(returned, EmailMessage)
    assert str(returned["Message-ID"]) == delivery.message_id
    assert verp.find(str(returned["Message-ID"])) == VerpRef(VerpKind.BOUNCE, delivery.id or 0)


@contextmanager
def _inbound(settings: Settings, engine: Engine) -> Iterator[int]:
    """`digest inbound` (its server's `serve`) on a free loopback port, in a thread."""
    from digest.inbound.server import serve

    inbound = settings.inbound.model_copy(update={"domain": BOUNCES, "port": 0})
    configured = settings.model_copy(update={"inbound": inbound})
    listening: list[int] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            serve(configured, engine, ready=lambda _host, port: listening.append(port), stop=stop)
        except BaseException as exc:  # shown by the poll below rather than lost in the thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="digest-inbound", daemon=True)
    thread.start()
    try:
        port = _poll("digest inbound to listen", lambda: listening[0] if listening else None)
        yield port
    finally:
        stop.set()
        thread.join(WAIT)
    assert not failed, failed
    assert not thread.is_alive(), "digest inbound did not stop"


def test_a_recipient_refusing_after_data_ends_suppressed(
    cli: Cli, session: Session, engine: Engine, settings: Settings
) -> None:
    _digest_due(session)
    with SmtpSink() as refusing, _inbound(settings, engine) as inbound_port:
        refusing.refuse(EVERYONE, 550, at="DATA")  # "550 5.1.1 No such user", after DATA
        with Postfix({"example.org": refusing.port, BOUNCES: inbound_port}) as relay:
            _send_through(cli, relay)

            def hard_bounce() -> InboundEvent | None:
                session.expire_all()
                query = select(InboundEvent).where(InboundEvent.kind == InboundKind.HARD_BOUNCE)
                return session.exec(query).first()

            event = _poll("the hard bounce event", hard_bounce)
            # The relay handed the DSN over and our server said 250 (stored and applied).
            log = relay.wait_for("status=sent (250").splitlines()
            assert any("to=<b-" in line and "status=sent (250" in line for line in log)
    delivery = _delivery(session)
    assert event.delivery_id == delivery.id
    assert (event.subscriber_id, event.list_id) == (delivery.subscriber_id, delivery.list_id)
    assert event.edition_id == delivery.edition_id
    assert (event.source, event.status, event.address) == ("smtp", "5.1.1", READER)
    assert "No such user" in event.diagnostic
    assert event.message_id is not None  # the raw DSN is kept for audit
    suppression = session.exec(select(Suppression).where(col(Suppression.email) == READER)).one()
    assert suppression.reason == SuppressionReason.HARD_BOUNCE
    assert suppression.enhanced == "5.1.1"
    assert suppression.delivery_id == delivery.id
    assert "5.1.1" in suppression.note
