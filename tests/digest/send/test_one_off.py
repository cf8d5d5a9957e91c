"""One-off mail: one rendered message to one address, with a digest's list headers."""

from __future__ import annotations

import asyncio

from digest.config import Settings
from digest.render.data import RenderedMessage
from digest.send.one_off import OneOff, one_off_envelope, send_one
from digest.send.smtp import SmtpSender
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.web import parse

RENDERED = RenderedMessage(
    subject="أهلًا بك",
    preheader="",
    html="<p>مرحبًا</p>",
    text="مرحبًا",
    locale="ar",
    unsubscribe_url="https://news.example.org/u/token",
)
MESSAGE = OneOff(
    RENDERED,
    list_name="النشرة اليومية",
    list_slug="daily",
    to_address="reem@example.org",
    stream="welcome",
    to_name="ريم",
    subject_prefix="[test] ",
)


def test_the_message_has_the_list_headers_and_a_message_id_of_its_own(
    settings: Settings,
) -> None:
    first, second = one_off_envelope(settings, MESSAGE), one_off_envelope(settings, MESSAGE)
    assert (first.sender, first.recipient) == (settings.sender.from_address, "reem@example.org")
    message = parse(first.data)
    assert message["Subject"] == "[test] أهلًا بك"
    assert message["To"].addresses[0].display_name == "ريم"
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/u/token>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Feedback-ID"].startswith("welcome:daily:welcome:")
    assert message["Content-Language"] == "ar"
    assert message["Message-ID"] != parse(second.data)["Message-ID"]


def test_send_one_opens_its_sender_itself_and_sends_the_message(settings: Settings) -> None:
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port, "connections": 1})
        sender = SmtpSender(smtp)
        outcome = asyncio.run(send_one(sender, one_off_envelope(settings, MESSAGE)))
        assert outcome.status == "sent"
        assert sink.recipients() == ["reem@example.org"]
    assert sink.sessions() == 1
