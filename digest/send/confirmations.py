"""Double opt-in mail: the confirmation link of a subscription waiting for consent, and the
welcome once it is confirmed (in the subscriber's language, with the topics they chose)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from digest.catalog.topics import topic_views
from digest.clock import utcnow
from digest.config import Settings
from digest.db.engine import session_scope
from digest.errors import InvalidInput
from digest.render.compiled import CompiledMessage
from digest.render.data import Recipient
from digest.render.renderer import Renderer, RenderOptions
from digest.send.one_off import OneOff, one_off_envelope, send_one
from digest.send.outcome import Envelope, Outcome, Sender
from digest.tracking.tokens import Purpose, Signer
from subscribers.consent import Membership, issue_confirmation, mark_sent, membership
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
    source: str = "cli",
) -> Envelope:
    """The confirmation email of a subscription, ready to send, with a new link.

    Only a subscription that is not active gets one (anything else is an InvalidInput).
    Issuing it makes every older link of the subscription useless. Untrusted input never
    reaches it: `To:` is the bare address and the greeting names nobody.
    """
    now = now or utcnow()
    with session_scope(engine) as session:
        found = membership(session, subscriber_id, list_id)
        if found.subscription.status == SubscriptionStatus.ACTIVE:
            _require(found, SubscriptionStatus.UNCONFIRMED, "there is nothing to confirm")
        nonce = issue_confirmation(session, subscriber_id, list_id, source=source, now=now)
    renderer = renderer or Renderer(RenderOptions.from_settings(settings))
    compiled = renderer.compile_confirmation(
        list_name=found.mailing_list.name, locale=found.subscriber.locale, day=_day(found, now)
    )
    signer = _signer(settings)
    recipient = Recipient(
        confirm_token=signer.dumps(Purpose.CONFIRM, subscriber_id, list_id, nonce),
        unsubscribe_token=signer.dumps(Purpose.UNSUBSCRIBE, subscriber_id, list_id),
    )
    return _envelope(settings, found, compiled, recipient, "confirm", named=False)


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
    signer = _signer(settings)
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
    outcome = await send_one(sender, envelope)
    if outcome.status == "sent":
        with session_scope(engine) as session:
            mark_sent(session, subscriber_id, list_id, utcnow())
    return outcome


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
    *,
    named: bool = True,
) -> Envelope:
    message = OneOff(
        compiled.personalise(recipient),
        list_name=found.mailing_list.name,
        list_slug=found.mailing_list.slug,
        to_address=found.subscriber.email,
        to_name=found.subscriber.name if named else "",
        stream=stream,
    )
    return one_off_envelope(settings, message)


def _signer(settings: Settings) -> Signer:
    """The links' signer; a weak secret is refused where the links reach other people
    (ConfigError), as for digests: a confirmation link signed with it could be forged."""
    settings.link_secret_warning()
    return Signer(settings.web.secret_key)
