"""The brake (digest/inbound/brake.py): an edition still sending is held when its hard-bounce
or complaint rate passes the setting over enough sent messages; and a real send through
aiosmtpd stops mid-run when the bounces of its first batch come in, until it is released."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from email.parser import BytesHeaderParser

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery, Edition, EditorAction, InboundKind
from digest.editions.workflow import release
from digest.inbound.brake import ACTOR
from digest.inbound.process import Handled, Processor
from digest.inbound.verdicts import Received, Verdict
from digest.send.dispatcher import DispatchOptions, RunHooks
from digest.send.run import RunOptions, send_list
from digest.send.smtp import SmtpSender
from tests.helpers.sent import NOW, Sent, bounce, deliver, mail, sent_world
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import add_article

HARD, COMPLAINT = InboundKind.HARD_BOUNCE, InboundKind.COMPLAINT


def _settings(settings: Settings, **inbound: object) -> Settings:
    values = {"pause_min_sample": 10, **inbound}
    return settings.model_copy(update={"inbound": settings.inbound.model_copy(update=values)})


def _edition(session: Session, edition_id: int) -> Edition:
    session.expire_all()
    edition = session.get(Edition, edition_id)
    assert edition is not None
    return edition


def _sent_edition(session: Session, readers: int, **status: str) -> tuple[Sent, list[Delivery]]:
    sent = sent_world(session, readers)
    at = NOW - timedelta(hours=1)
    return sent, [deliver(session, sent, f"r{i}@example.org", at, **status) for i in range(readers)]


def _apply(
    engine: Engine, settings: Settings, pairs: list[tuple[Received, Verdict]]
) -> list[Handled]:
    return Processor(engine, settings, clock=lambda: NOW).apply(pairs)


def test_hard_bounces_over_the_rate_hold_a_sending_edition(
    engine: Engine, session: Session, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _sent, deliveries = _sent_edition(session, 20)
    settings = _settings(settings)
    # 1 of 20 is 5%: not over the rate.
    _apply(engine, settings, [(mail(), bounce(HARD, deliveries[0], settings))])
    edition_id = deliveries[0].edition_id
    assert _edition(session, edition_id).status == "sending"
    with caplog.at_level(logging.ERROR, logger="digest.inbound.brake"):
        _apply(engine, settings, [(mail(), bounce(HARD, deliveries[1], settings))])
    assert _edition(session, edition_id).status == "held"
    (action,) = session.exec(select(EditorAction)).all()
    assert (action.actor, action.action) == (ACTOR, "hold")
    assert action.detail == (
        "inbound brake: hard-bounce rate 10.00% (2 of 20 sent) is over 5.00%; check the list, "
        f"then resume with `digest editions release {edition_id}`"
    )
    (line,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert line.getMessage() == f"edition {edition_id} held: {action.detail}"


def test_complaints_over_their_rate_hold_it(
    engine: Engine, session: Session, settings: Settings
) -> None:
    _sent, deliveries = _sent_edition(session, 10)
    settings = _settings(settings, pause_complaint_rate=0.05)
    _apply(engine, settings, [(mail(), bounce(COMPLAINT, deliveries[3], settings))])
    edition = _edition(session, deliveries[0].edition_id)
    assert edition.status == "held"
    (action,) = session.exec(select(EditorAction)).all()
    assert action.detail.startswith("inbound brake: complaint rate 10.00% (1 of 10 sent)")


def test_below_the_minimum_sample_nothing_is_held(
    engine: Engine, session: Session, settings: Settings
) -> None:
    _sent, deliveries = _sent_edition(session, 9)
    settings = _settings(settings)
    _apply(engine, settings, [(mail(), bounce(HARD, d, settings)) for d in deliveries[:5]])
    assert _edition(session, deliveries[0].edition_id).status == "sending"  # 9 < 10 sent


def test_soft_bounces_do_not_brake(engine: Engine, session: Session, settings: Settings) -> None:
    _sent, deliveries = _sent_edition(session, 10)
    settings = _settings(settings)
    soft = InboundKind.SOFT_BOUNCE
    _apply(engine, settings, [(mail(), bounce(soft, d, settings)) for d in deliveries[:6]])
    assert _edition(session, deliveries[0].edition_id).status == "sending"


def test_a_finished_edition_is_not_held(
    engine: Engine, session: Session, settings: Settings
) -> None:
    _sent, deliveries = _sent_edition(session, 10, edition_status="sent")
    settings = _settings(settings)
    _apply(engine, settings, [(mail(), bounce(HARD, d, settings)) for d in deliveries[:5]])
    assert _edition(session, deliveries[0].edition_id).status == "sent"
    assert session.exec(select(EditorAction)).all() == []


def _message_id(data: bytes) -> str:
    return str(BytesHeaderParser().parsebytes(data)["Message-ID"])


def test_the_brake_pauses_a_send_mid_run(
    engine: Engine, session: Session, settings: Settings
) -> None:
    sent = sent_world(session, 40)
    add_article(session, sent.world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port, "connections": 2})
        tuned = _settings(settings.model_copy(update={"smtp": smtp}))
        options = RunOptions(DispatchOptions.from_settings(tuned, batch_size=10), now=NOW)
        processor = Processor(engine, tuned, clock=lambda: NOW)
        bounced: list[Handled] = []

        def stop() -> bool:  # before each claim: the first batch's bounces come back
            if len(sink.messages) == 10 and not bounced:
                returned = sink.messages[:2]  # 2 of 10 sent: 20%, over 5%
                bounced.extend(
                    processor.apply(
                        [
                            (
                                mail(),
                                Verdict(
                                    HARD,
                                    address=m.rcpt_tos[0],
                                    status="5.1.1",
                                    original_message_id=_message_id(m.data),
                                ),
                            )
                            for m in returned
                        ]
                    )
                )
            return False

        def run() -> None:
            hooks = RunHooks(clock=lambda: NOW, stop=stop)
            asyncio.run(send_list(engine, sent.world.daily, SmtpSender(smtp), options, hooks))

        run()
        assert [h.action for h in bounced] == ["suppressed", "suppressed"]
        assert len(sink.messages) == 10  # the next batch sent nothing
        session.expire_all()
        assert Counter(d.status for d in session.exec(select(Delivery))) == {
            "sent": 10,
            "queued": 30,
        }
        (edition,) = session.exec(select(Edition)).all()
        assert edition.status == "held"
        (action,) = session.exec(select(EditorAction)).all()
        assert action.actor == ACTOR and f"digest editions release {edition.id}" in action.detail

        release(session, edition.id or 0, actor="cli:editor", now=NOW)
        session.commit()
        run()
    assert Counter(sink.recipients()) == Counter(f"r{i}@example.org" for i in range(40))
    assert _edition(session, edition.id or 0).status == "sent"
