"""Editors' test sends: today's preview of a topic mix, "[test]" in the subject, tracking off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.send.proof import send_test
from digest.send.smtp import SmtpSender
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.web import parse
from tests.helpers.world import add_article, make_world


def test_a_test_send_is_the_preview_marked_as_a_test(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    add_article(session, world, "أسعار النفط", ["economy"], hour_ago)
    add_article(session, world, "نتيجة المباراة", ["sports"], hour_ago)
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port})
        sender = SmtpSender(smtp)
        outcome = asyncio.run(
            send_test(
                engine,
                settings,
                sender,
                list_slug="daily",
                to="Editor@Example.ORG",
                topic_slugs=["economy"],
            )
        )
        assert outcome.status == "sent"
        (received,) = sink.messages
    message = parse(received.data)
    assert received.rcpt_tos == ("Editor@example.org",)
    assert str(message["Subject"]).startswith("[test] ")
    assert message["Feedback-ID"].startswith("test:daily:test:")
    html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "أسعار النفط" in html and "نتيجة المباراة" not in html
    assert "/o/" not in html and "/c/" not in html  # tracking off
