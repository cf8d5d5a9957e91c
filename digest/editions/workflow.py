"""Editions: the editor's state machine and controls, and the record of who did what.

States: draft (before its first send time) → approved or held → sending → sent. A list
with `needs_approval` sends only approved editions; otherwise a draft goes out at its
time. A held edition sends nothing until released. Controls (pins, excludes, subject,
note, topic order) change only before the edition goes out; changing an approved one
takes the approval back. Every change is one `EditorAction` row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.catalog.windows import edition_window
from digest.db.models import (
    Article,
    ArticleTopic,
    Delivery,
    Edition,
    EditionStatus,
    EditorAction,
    Topic,
)
from digest.db.tables import EDITION
from digest.editions import states
from digest.editions.controls import EditionControls, Editorial, Refused, clean_note, clean_subject
from digest.errors import NotFound
from subscribers.lists import get_list, offered_topic_ids
from subscribers.models import MailingList

EDITABLE = states.EDITABLE
LOCALES = ("ar", "en")


def controls_of(edition: Edition) -> EditionControls:
    """The controls of an edition, as selection and rendering read them."""
    assert edition.id is not None
    moments = [m for m in (edition.approved_at, edition.released_at) if m is not None]
    return EditionControls(
        edition_id=edition.id,
        local_date=edition.local_date,
        status=edition.status,
        pinned=tuple(edition.pinned_ids),
        top=frozenset(edition.top_ids),
        excluded=frozenset(edition.excluded_ids),
        topic_order=tuple(edition.topic_order),
        subjects=dict(edition.subjects),
        note=edition.note,
        sendable_since=max(moments) if moments else None,
    )


def load_editorial(
    connection: Connection, mailing_list: MailingList, dates: Iterable[date]
) -> Editorial:
    """The list's editions of `dates` (one query), for selection."""
    wanted = sorted(set(dates))
    found: dict[date, EditionControls] = {}
    if wanted:
        rows = connection.execute(
            sa_select(EDITION).where(
                EDITION.c.list_id == mailing_list.id, EDITION.c.local_date.in_(wanted)
            )
        )
        for row in rows:
            controls = controls_of(Edition(**row._mapping))
            found[controls.local_date] = controls
    return Editorial(mailing_list.needs_approval, found)


def editorial_around(
    connection: Connection, mailing_list: MailingList, now: datetime, day: date | None = None
) -> Editorial:
    """The editions that can be due at `now` in any time zone (and `day`'s, if given)."""
    today = now.astimezone(UTC).date()
    dates = {today + timedelta(days=d) for d in range(-2, 3)} | ({day} if day else set())
    return load_editorial(connection, mailing_list, dates)


def load_controls(connection: Connection, edition_id: int) -> EditionControls | None:
    """One edition's controls (for building its messages from the outbox)."""
    row = connection.execute(sa_select(EDITION).where(EDITION.c.id == edition_id)).first()
    return None if row is None else controls_of(Edition(**row._mapping))


def get_edition(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise NotFound(f"no edition {edition_id}: see `digest editions list`")
    return edition


def list_of(session: Session, edition: Edition) -> MailingList:
    found = session.get(MailingList, edition.list_id)
    assert found is not None  # the foreign key cascades
    return found


def ensure_edition(session: Session, mailing_list: MailingList, day: date) -> Edition:
    """The list's edition of `day`, created as a draft when it does not exist yet."""
    query = select(Edition).where(Edition.list_id == mailing_list.id, Edition.local_date == day)
    found = session.exec(query).first()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            edition = Edition(list_id=mailing_list.id or 0, local_date=day)
            session.add(edition)
    except IntegrityError:  # planned (or created by another editor) meanwhile
        return session.exec(query).one()
    return edition


def upcoming(
    session: Session, *, timezone: str, now: datetime, list_slug: str | None = None
) -> list[tuple[MailingList, Edition]]:
    """Today's and tomorrow's editions of each list (or of one), created as drafts if needed."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    lists = [get_list(session, list_slug)] if list_slug else _all_lists(session)
    return [
        (mailing_list, ensure_edition(session, mailing_list, day))
        for mailing_list in lists
        for day in (today, today + timedelta(days=1))
    ]


def recent(
    session: Session, *, list_slug: str | None = None, limit: int = 20
) -> list[tuple[MailingList, Edition]]:
    """Editions, latest date first."""
    query = select(Edition, MailingList).join(
        MailingList, col(MailingList.id) == col(Edition.list_id)
    )
    if list_slug:
        query = query.where(MailingList.slug == get_list(session, list_slug).slug)
    query = query.order_by(col(Edition.local_date).desc(), col(MailingList.slug)).limit(limit)
    return [(m, e) for e, m in session.exec(query)]


def delivery_counts(session: Session, edition_id: int) -> dict[str, int]:
    rows = session.exec(
        select(Delivery.status, func.count())
        .where(Delivery.edition_id == edition_id)
        .group_by(col(Delivery.status))
    )
    return {status: count for status, count in rows}


def actions(session: Session, edition_id: int) -> list[EditorAction]:
    """What editors did to the edition, oldest first."""
    return list(
        session.exec(
            select(EditorAction)
            .where(EditorAction.edition_id == edition_id)
            .order_by(col(EditorAction.at), col(EditorAction.id))
        )
    )


def record(session: Session, edition: Edition, actor: str, action: str, detail: str = "") -> None:
    """One line of the edition's history (also used for test sends)."""
    session.add(
        EditorAction(
            edition_id=edition.id or 0, actor=actor[:320], action=action, detail=detail[:1000]
        )
    )
    session.flush()


# --- states ---------------------------------------------------------------------------


def approve(session: Session, edition_id: int, *, actor: str, now: datetime) -> Edition:
    """Draft or held → approved (it goes out at its time)."""
    edition = get_edition(session, edition_id)
    if edition.status == EditionStatus.APPROVED:
        raise Refused("already_approved", f"edition {edition_id} is already approved")
    _not_gone(edition, "approve")
    if edition.status == EditionStatus.HELD:
        edition.released_at = now
    edition.status = states.move(edition.status, states.APPROVE)
    edition.approved_at, edition.approved_by = now, actor
    return _changed(session, edition, actor, "approve")


def hold(session: Session, edition_id: int, *, actor: str) -> Edition:
    """Stop the edition: nothing more of it is sent until it is released."""
    edition = get_edition(session, edition_id)
    if edition.status == EditionStatus.HELD:
        raise Refused("already_held", f"edition {edition_id} is already held")
    edition.status = states.move(edition.status, states.HOLD)
    return _changed(session, edition, actor, "hold")


def release(session: Session, edition_id: int, *, actor: str, now: datetime) -> Edition:
    """Held → what it was: sending again if it had started, else approved or draft.

    What fell due while it was held goes out at the next send (lateness counts from now).
    """
    edition = get_edition(session, edition_id)
    if edition.status != EditionStatus.HELD:
        raise Refused("not_held", f"edition {edition_id} is not held (it is {edition.status})")
    started = session.exec(
        select(Delivery.id).where(Delivery.edition_id == edition_id).limit(1)
    ).first()
    if started is not None:
        edition.status = states.move(edition.status, states.RESUME)
    elif edition.approved_at is not None:
        edition.status = states.move(edition.status, states.RELEASE_APPROVED)
    else:
        edition.status = states.move(edition.status, states.RELEASE_DRAFT)
    edition.released_at = now
    return _changed(session, edition, actor, "release", edition.status)


# --- controls --------------------------------------------------------------------------


def pin(
    session: Session, edition_id: int, article_id: int, *, top: bool = False, actor: str
) -> Edition:
    """Lead with the article (the last one pinned leads); `top`: for every subscriber."""
    edition = _editable(session, edition_id)
    article = _in_window(session, edition, article_id)
    if article_id in edition.excluded_ids:
        raise Refused(
            "excluded",
            f"article {article_id} is excluded from edition {edition_id}: "
            f"include it first (`digest editions include {edition_id} {article_id}`)",
        )
    topics = _article_topics(session, article_id)
    if not topics:
        raise Refused("no_topic", f"article {article_id} has no topic: it cannot go in a digest")
    offered = offered_topic_ids(session, edition.list_id)
    if not top and offered and not topics.intersection(offered):
        raise Refused(
            "not_offered",
            f"article {article_id} has none of the list's topics, so nobody would get it: "
            "pin it with --top to send it to every subscriber",
        )
    edition.pinned_ids = [article_id, *(a for a in edition.pinned_ids if a != article_id)]
    others = [a for a in edition.top_ids if a != article_id]
    edition.top_ids = [article_id, *others] if top else others
    detail = f"{article_id} {article.title[:200]}" + (" (top story)" if top else "")
    return _changed(session, edition, actor, "pin", detail, steer=True)


def unpin(session: Session, edition_id: int, article_id: int, *, actor: str) -> Edition:
    edition = _editable(session, edition_id)
    if article_id not in edition.pinned_ids:
        raise Refused("not_pinned", f"article {article_id} is not pinned in edition {edition_id}")
    edition.pinned_ids = [a for a in edition.pinned_ids if a != article_id]
    edition.top_ids = [a for a in edition.top_ids if a != article_id]
    return _changed(session, edition, actor, "unpin", str(article_id), steer=True)


def exclude(session: Session, edition_id: int, article_id: int, *, actor: str) -> Edition:
    """Leave the article out of every digest of the edition."""
    edition = _editable(session, edition_id)
    article = _in_window(session, edition, article_id)
    if article_id in edition.pinned_ids:
        raise Refused(
            "pinned",
            f"article {article_id} is pinned in edition {edition_id}: "
            f"unpin it first (`digest editions unpin {edition_id} {article_id}`)",
        )
    if article_id in edition.excluded_ids:
        raise Refused(
            "already_excluded",
            f"article {article_id} is already excluded from edition {edition_id}",
        )
    edition.excluded_ids = [*edition.excluded_ids, article_id]
    detail = f"{article_id} {article.title[:200]}"
    return _changed(session, edition, actor, "exclude", detail, steer=True)


def include(session: Session, edition_id: int, article_id: int, *, actor: str) -> Edition:
    edition = _editable(session, edition_id)
    if article_id not in edition.excluded_ids:
        raise Refused(
            "not_excluded", f"article {article_id} is not excluded from edition {edition_id}"
        )
    edition.excluded_ids = [a for a in edition.excluded_ids if a != article_id]
    return _changed(session, edition, actor, "include", str(article_id), steer=True)


def set_subject(
    session: Session, edition_id: int, text: str, *, locale: str = "ar", actor: str
) -> Edition:
    """The edition's subject template for one language ("" goes back to the settings')."""
    if locale not in LOCALES:
        raise Refused("bad_locale", f"locale {locale!r}: subjects exist for {', '.join(LOCALES)}")
    subject = clean_subject(text)
    edition = _editable(session, edition_id)
    subjects = {k: v for k, v in edition.subjects.items() if k != locale}
    edition.subjects = {**subjects, locale: subject} if subject else subjects
    return _changed(session, edition, actor, "subject", f"{locale}: {subject}", steer=True)


def set_note(session: Session, edition_id: int, text: str, *, actor: str) -> Edition:
    """The editor's note under the header ("" removes it)."""
    note = clean_note(text)
    edition = _editable(session, edition_id)
    edition.note = note
    return _changed(session, edition, actor, "note", note, steer=True)


def set_order(session: Session, edition_id: int, slugs: Sequence[str], *, actor: str) -> Edition:
    """Sections in this topic order (then each subscriber's own); none: their own order."""
    edition = _editable(session, edition_id)
    by_slug = {t.slug: t.id for t in session.exec(select(Topic)) if t.id is not None}
    unknown = [s for s in slugs if s not in by_slug]
    if unknown:
        raise Refused("unknown_topic", f"unknown topic {unknown[0]!r}: see `digest topics list`")
    ids = list(dict.fromkeys(by_slug[s] for s in slugs))
    offered = offered_topic_ids(session, edition.list_id)
    outside = [s for s in slugs if offered and by_slug[s] not in offered]
    if outside:
        raise Refused("topic_not_offered", f"topic {outside[0]!r} is not offered by this list")
    edition.topic_order = ids
    detail = " ".join(dict.fromkeys(slugs)) or "(subscribers' own order)"
    return _changed(session, edition, actor, "order", detail, steer=True)


def _all_lists(session: Session) -> list[MailingList]:
    return list(session.exec(select(MailingList).order_by(col(MailingList.slug))))


def _not_gone(edition: Edition, verb: str) -> None:
    if edition.status == EditionStatus.SENT:
        raise Refused("sent", f"edition {edition.id} is already sent: nothing to {verb}")
    if edition.status == EditionStatus.SENDING:
        raise Refused("sending", f"edition {edition.id} is being sent: too late to {verb} it")


def _editable(session: Session, edition_id: int) -> Edition:
    edition = get_edition(session, edition_id)
    if edition.status not in EDITABLE:
        state = "sent" if edition.status == EditionStatus.SENT else "being sent"
        raise Refused(
            "gone", f"edition {edition_id} is already {state}: its content can no longer change"
        )
    return edition


def _in_window(session: Session, edition: Edition, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise Refused("unknown_article", f"no article {article_id}: see `digest articles list`")
    start, end = edition_window(list_of(session, edition), edition.local_date)
    ingested = article.ingested_at
    if not start < ingested <= end:
        raise Refused(
            "not_in_window",
            f"article {article_id} came in {ingested:%Y-%m-%d %H:%M} UTC, outside the window "
            f"of edition {edition.id} ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC): "
            "choose one of its articles",
        )
    return article


def _article_topics(session: Session, article_id: int) -> set[int]:
    rows = session.exec(select(ArticleTopic.topic_id).where(ArticleTopic.article_id == article_id))
    return set(rows)


def _changed(
    session: Session,
    edition: Edition,
    actor: str,
    action: str,
    detail: str = "",
    *,
    steer: bool = False,
) -> Edition:
    """Save the edition and its history line; new content takes an approval back."""
    if steer and edition.status == EditionStatus.APPROVED:
        edition.status = states.move(edition.status, states.WITHDRAW)
        edition.approved_at = edition.approved_by = None
        detail = f"{detail} (approval withdrawn: approve again)".strip()
    session.add(edition)
    session.flush()
    record(session, edition, actor, action, str(detail))
    return edition
