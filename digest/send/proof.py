"""A test send for editors: the preview of a topic mix, mailed with "[test]" in the subject."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.preview.reader import PreviewOptions, PreviewRequest, preview
from digest.render.renderer import RenderedMessage, Renderer, RenderOptions
from digest.send.one_off import OneOff, one_off_envelope, send_one
from digest.send.outcome import Outcome, Sender
from subscribers.lists import get_list
from subscribers.models import MailingList
from subscribers.validate import normalize_email


async def send_test(
    engine: Engine,
    settings: Settings,
    sender: Sender,
    *,
    list_slug: str,
    to: str,
    topic_slugs: Sequence[str] = (),
) -> Outcome:
    """Render today's digest for `topic_slugs` (tracking off) and send it to `to`."""
    renderer = Renderer(RenderOptions.from_settings(settings))
    with Session(engine) as session:
        mailing_list = get_list(session, list_slug)
        request = PreviewRequest(list_slug, topic_slugs=topic_slugs)
        rendered = preview(session, PreviewOptions.from_settings(settings), renderer, request)
    return await mail_test(settings, sender, mailing_list, rendered, to)


async def mail_test(
    settings: Settings,
    sender: Sender,
    mailing_list: MailingList,
    rendered: RenderedMessage,
    to: str,
) -> Outcome:
    """Send a rendered preview to `to` with "[test]" in the subject (editors' test sends)."""
    message = OneOff(
        rendered,
        list_name=mailing_list.name,
        list_slug=mailing_list.slug,
        to_address=normalize_email(to),
        stream="test",
        subject_prefix="[test] ",
    )
    return await send_one(sender, one_off_envelope(settings, message))
