"""Double opt-in: mail the confirmation link of an unconfirmed subscription."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput
from digest.render.renderer import Recipient, Renderer, RenderOptions
from digest.send.mime import DkimSigner, MessageTemplate, make_message_id
from digest.send.outcome import Envelope, Outcome, Sender
from digest.tracking.tokens import Purpose, Signer
from subscribers.consent import membership
from subscribers.models import SubscriptionStatus


async def send_confirmation(
    engine: Engine,
    settings: Settings,
    sender: Sender,
    *,
    subscriber_id: int,
    list_id: int,
    renderer: Renderer | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Mail the confirmation email (a button to `/confirm/{token}`) through an open `sender`."""
    envelope = confirmation_envelope(
        engine,
        settings,
        subscriber_id=subscriber_id,
        list_id=list_id,
        renderer=renderer,
        now=now,
    )
    return await sender.send(envelope)


def confirmation_envelope(
    engine: Engine,
    settings: Settings,
    *,
    subscriber_id: int,
    list_id: int,
    renderer: Renderer | None = None,
    now: datetime | None = None,
) -> Envelope:
    """The confirmation email of a subscription, ready to send.

    Only an unconfirmed subscription gets one; anything else is an InvalidInput.
    """
    with Session(engine) as session:
        found = membership(session, subscriber_id, list_id)
    if found.subscription.status != SubscriptionStatus.UNCONFIRMED:
        raise InvalidInput(
            f"{found.subscriber.email} is {found.subscription.status} on "
            f"{found.mailing_list.slug!r}: there is nothing to confirm"
        )
    subscriber, mailing_list = found.subscriber, found.mailing_list
    renderer = renderer or Renderer(RenderOptions.from_settings(settings))
    day = (now or utcnow()).astimezone(ZoneInfo(subscriber.timezone)).date()
    compiled = renderer.compile_confirmation(
        list_name=mailing_list.name, locale=subscriber.locale, day=day
    )
    signer = Signer(settings.web.secret_key)
    rendered = compiled.personalise(
        Recipient(
            name=subscriber.name,
            confirm_token=signer.dumps(Purpose.CONFIRM, subscriber_id, list_id),
            unsubscribe_token=signer.dumps(Purpose.UNSUBSCRIBE, subscriber_id, list_id),
        )
    )
    template = MessageTemplate(
        settings.sender,
        list_name=mailing_list.name,
        list_slug=mailing_list.slug,
        subject=rendered.subject,
        locale=rendered.locale,
        campaign="confirm",
        stream="confirm",
        signer=DkimSigner.from_settings(settings.dkim, settings.sender),
    )
    data = template.build(
        to_address=subscriber.email,
        to_name=subscriber.name,
        html=rendered.html,
        text=rendered.text,
        unsubscribe_url=rendered.unsubscribe_url,
        message_id=make_message_id(settings.sender.list_id_domain),
    )
    return Envelope(settings.sender.from_address, subscriber.email, data)


async def mail_confirmation(
    engine: Engine, settings: Settings, sender: Sender, *, subscriber_id: int, list_id: int
) -> Outcome:
    """Open `sender`, send the confirmation email, close it (for one-off sends: the CLI)."""
    async with sender:
        return await send_confirmation(
            engine, settings, sender, subscriber_id=subscriber_id, list_id=list_id
        )
