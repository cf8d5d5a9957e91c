"""Double opt-in mail: the confirmation link of an unconfirmed subscription, and the welcome
once it is confirmed (in the subscriber's language, with the topics they chose)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from digest.catalog.topics import topic_views
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput
from digest.render.compiled import CompiledMessage
from digest.render.renderer import Recipient, Renderer, RenderOptions
from digest.send.one_off import OneOff, one_off_envelope, send_one
from digest.send.outcome import Envelope, Outcome, Sender
from digest.tracking.tokens import Purpose, Signer
from subscribers.consent import Membership, membership
from subscribers.models import SubscriptionStatus
from subscribers.preferences import load_preferences


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
    _require(found, SubscriptionStatus.UNCONFIRMED, "there is nothing to confirm")
    renderer = renderer or Renderer(RenderOptions.from_settings(settings))
    compiled = renderer.compile_confirmation(
        list_name=found.mailing_list.name, locale=found.subscriber.locale, day=_day(found, now)
    )
    signer = Signer(settings.web.secret_key)
    recipient = Recipient.of_subscription(
        found.subscriber.name, signer, subscriber_id, list_id, Purpose.CONFIRM, Purpose.UNSUBSCRIBE
    )
    return _envelope(settings, found, compiled, recipient, "confirm")


def welcome_envelope(
    engine: Engine,
    settings: Settings,
    *,
    subscriber_id: int,
    list_id: int,
    renderer: Renderer | None = None,
    now: datetime | None = None,
) -> Envelope:
    """The welcome email of a subscription just confirmed, ready to send.

    Only an active subscription gets one; anything else is an InvalidInput. Sending it once
    is the caller's part: on the confirmation that activated the subscription, never again.
    """
    with Session(engine) as session:
        found = membership(session, subscriber_id, list_id)
        prefs = load_preferences(session, subscriber_id, list_id)
        views = topic_views(session.connection())
    _require(found, SubscriptionStatus.ACTIVE, "it is not confirmed")
    topics = [
        views[t.id]
        for t in prefs.topics
        if t.id in views and (not prefs.chosen or t.id in prefs.chosen)  # none: all the list's
    ]
    renderer = renderer or Renderer(RenderOptions.from_settings(settings))
    compiled = renderer.compile_welcome(
        list_name=found.mailing_list.name,
        locale=found.subscriber.locale,
        day=_day(found, now),
        topics=topics,
        cadence=found.mailing_list.cadence,
    )
    signer = Signer(settings.web.secret_key)
    recipient = Recipient.of_subscription(
        found.subscriber.name,
        signer,
        subscriber_id,
        list_id,
        Purpose.PREFERENCES,
        Purpose.UNSUBSCRIBE,
    )
    return _envelope(settings, found, compiled, recipient, "welcome")


async def mail_confirmation(
    engine: Engine, settings: Settings, sender: Sender, *, subscriber_id: int, list_id: int
) -> Outcome:
    """Open `sender`, send the confirmation email, close it (for one-off sends: the CLI)."""
    envelope = confirmation_envelope(engine, settings, subscriber_id=subscriber_id, list_id=list_id)
    return await send_one(sender, envelope)


def _require(found: Membership, status: SubscriptionStatus, otherwise: str) -> None:
    if found.subscription.status != status:
        raise InvalidInput(
            f"{found.subscriber.email} is {found.subscription.status} on "
            f"{found.mailing_list.slug!r}: {otherwise}"
        )


def _day(found: Membership, now: datetime | None) -> date:
    """Today where the subscriber lives (the date the email shows)."""
    return (now or utcnow()).astimezone(ZoneInfo(found.subscriber.timezone)).date()


def _envelope(
    settings: Settings,
    found: Membership,
    compiled: CompiledMessage,
    recipient: Recipient,
    stream: str,
) -> Envelope:
    message = OneOff(
        compiled.personalise(recipient),
        list_name=found.mailing_list.name,
        list_slug=found.mailing_list.slug,
        to_address=found.subscriber.email,
        to_name=found.subscriber.name,
        stream=stream,
    )
    return one_off_envelope(settings, message)
