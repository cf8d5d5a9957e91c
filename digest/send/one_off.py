"""One-off mail (confirmation, welcome, an editor's test send): one rendered message, built,
signed and sent to one address with the same headers as a digest."""

from __future__ import annotations

from dataclasses import dataclass

from digest.config import Settings
from digest.render.data import RenderedMessage
from digest.send.dkim import DkimSigner
from digest.send.mime import (
    MessageParts,
    MessageTemplate,
    SharedHeaders,
    make_message_id,
)
from digest.send.outcome import Envelope, Outcome, Sender


@dataclass(frozen=True)
class OneOff:
    """A rendered message for one address, on behalf of a list, in a named mail stream.

    `stream` names it in Feedback-ID (campaign and stream: "confirm", "welcome", "test");
    List-Id comes from the list, List-Unsubscribe from the message's unsubscribe URL.
    """

    rendered: RenderedMessage
    list_name: str
    list_slug: str
    to_address: str
    stream: str
    to_name: str = ""
    subject_prefix: str = ""  # "[test] " for test sends


def one_off_envelope(settings: Settings, message: OneOff) -> Envelope:
    """The message as bytes (new Message-ID, DKIM-signed when a key is set), ready to send."""
    rendered = message.rendered
    shared = SharedHeaders(
        list_name=message.list_name,
        list_slug=message.list_slug,
        subject=f"{message.subject_prefix}{rendered.subject}",
        locale=rendered.locale,
        campaign=message.stream,
        stream=message.stream,
    )
    signer = DkimSigner.from_settings(settings.dkim, settings.sender)
    data = MessageTemplate(settings.sender, shared, signer).build(
        MessageParts(
            to_address=message.to_address,
            to_name=message.to_name,
            html=rendered.html,
            text=rendered.text,
            unsubscribe_url=rendered.unsubscribe_url,
            message_id=make_message_id(settings.sender.list_id_domain),
        )
    )
    return Envelope(settings.sender.from_address, message.to_address, data)


async def send_one(sender: Sender, envelope: Envelope) -> Outcome:
    """Open `sender`, send `envelope`, close it: the whole life of a one-off send."""
    async with sender:
        return await sender.send(envelope)
