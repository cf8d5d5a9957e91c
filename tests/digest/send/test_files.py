"""The .eml directory sender (digest/send/files.py): parseable files, safe names."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

from digest.config import SenderSettings
from digest.send.files import FileSender
from digest.send.mime import MessageParts, MessageTemplate, SharedHeaders
from digest.send.outcome import Envelope, Outcome, Sender

RETURN_PATH = "bounces@news.example.org"


def _digest_message(recipient: str, message_id: str | None) -> bytes:
    shared = SharedHeaders(list_name="Daily Digest", list_slug="daily", subject="نشرتك اليومية")
    return MessageTemplate(SenderSettings(), shared).build(
        MessageParts(
            to_address=recipient,
            to_name="قارئ",
            html="<p>مرحبا</p>",
            text="مرحبا",
            unsubscribe_url="https://news.example.org/u/T",
            message_id=message_id,
        )
    )


def test_file_sender_writes_parseable_eml_files(tmp_path: Path) -> None:
    directory = tmp_path / "out" / "edition-1"
    sender: Sender = FileSender(directory)
    envelopes = [
        Envelope(RETURN_PATH, "a@example.com", _digest_message("a@example.com", "<m1@x.org>")),
        Envelope(RETURN_PATH, "b@example.com", b"Message-ID: <../../evil>\r\n\r\nbody\r\n"),
        Envelope(RETURN_PATH, "c@example.com", b"Subject: no id\r\n\r\nbody\r\n"),
    ]

    async def go() -> list[Outcome]:
        async with sender:
            return [await sender.send(envelope) for envelope in envelopes]

    outcomes = asyncio.run(go())
    assert [o.status for o in outcomes] == ["sent"] * 3
    names = sorted(path.name for path in directory.iterdir())
    assert names == ["evil.eml", "m1_x.org.eml", "message-000001.eml"]
    parsed = email.message_from_bytes(
        (directory / "m1_x.org.eml").read_bytes(), policy=email.policy.default
    )
    assert parsed["Subject"] == "نشرتك اليومية"
    assert parsed["To"].addresses[0].addr_spec == "a@example.com"
    assert (directory / "m1_x.org.eml").read_bytes() == envelopes[0].data
