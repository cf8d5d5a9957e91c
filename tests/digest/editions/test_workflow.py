"""Editions: editor controls steer selection and rendering; hold, release and approval gate
sending; bad input changes nothing."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery, Edition, EditorAction
from digest.editions import workflow as editions
from digest.editions.workflow import editorial_around
from digest.errors import InvalidInput
from digest.preview.edition import overview, render_preview
from digest.render.renderer import Recipient, Renderer, RenderOptions
from digest.selection.due import PlanRequest, Selection, select_due
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.smtp import SmtpSender
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)  # 09:00 in Riyadh: the 07:00 digests are due
DAY = date(2026, 11, 29)
ACTOR = "editor@example.org"


@dataclass
class News:
    world: World
    edition_id: int
    politics_new: int
    politics_old: int
    economy: int
    sports: int


@pytest.fixture
def news(session: Session) -> News:
    world = make_world(session)
    add_reader(session, world, "p@example.org", ["politics"], name="ريم")
    add_reader(session, world, "e@example.org", ["economy"])
    add_reader(session, world, "s@example.org", ["sports"], locale="en")
    add_reader(session, world, "pe@example.org", ["politics", "economy"])
    ids = [
        add_article(session, world, title, [topic], NOW - timedelta(hours=hours))
        for title, topic, hours in (
            ("انتخابات بلدية في الرياض", "politics", 1),
            ("قانون الانتخاب الجديد", "politics", 5),
            ("أسعار النفط ترتفع", "economy", 2),
            ("نهائي كأس الخليج", "sports", 3),
        )
    ]
    edition = editions.ensure_edition(session, world.daily, DAY)
    session.commit()
    return News(world, edition.id or 0, *ids)


def _select(engine: Engine, world: World, now: datetime = NOW) -> Selection:
    with engine.connect() as connection:
        return select_due(
            connection,
            world.daily,
            PlanRequest(
                now=now, max_articles=20, editorial=editorial_around(connection, world.daily, now)
            ),
        )


def _ids(selection: Selection) -> dict[str, tuple[int, ...]]:
    """reader -> the article ids of their digest."""
    return {d.email: p.article_ids for p in selection.segments for d in p.recipients}


def _emails(settings: Settings, selection: Selection) -> dict[str, tuple[str, str, str]]:
    """reader -> (subject, HTML body, text) of their digest, rendered untracked."""
    renderer = Renderer(RenderOptions.from_settings(settings))
    found = {}
    for planned in selection.segments:
        message = render_preview(renderer, planned.segment)
        body = message.html[message.html.index("<body") :]  # not the <title>
        body = re.sub(r'<div style="display:none;[^>]*>.*?</div>', "", body, count=1)  # preheader
        for due in planned.recipients:
            found[due.email] = (message.subject, body, message.text)
    return found


def _change(engine: Engine, work: object) -> None:
    with Session(engine) as session:
        work(session)  # type: ignore[operator]
        session.commit()


def test_a_pin_leads_the_digests_of_its_topic_and_changes_nothing_else(
    engine: Engine, settings: Settings, news: News
) -> None:
    before = _select(engine, news.world)
    assert _ids(before)["p@example.org"] == (news.politics_new, news.politics_old)
    emails_before = _emails(settings, before)
    _change(
        engine,
        lambda s: editions.pin(s, news.edition_id, news.politics_old, actor=ACTOR),
    )
    after = _select(engine, news.world)
    ids = _ids(after)
    assert ids["p@example.org"] == (news.politics_old, news.politics_new)
    assert ids["pe@example.org"] == (news.politics_old, news.politics_new, news.economy)
    emails_after = _emails(settings, after)
    for untouched in ("e@example.org", "s@example.org"):
        assert ids[untouched] == _ids(before)[untouched]
        assert emails_after[untouched] == emails_before[untouched]
    subject, html, text = emails_after["p@example.org"]
    assert subject == "نشرتك اليومية: قانون الانتخاب الجديد"  # {top_title}: the lead
    assert html.index("أبرز الأخبار") < html.index("قانون الانتخاب الجديد") < html.index("سياسة")
    assert text.index("قانون الانتخاب الجديد") < text.index("انتخابات بلدية في الرياض")


def test_a_top_story_goes_first_to_every_reader_whatever_their_topics(
    engine: Engine, settings: Settings, news: News
) -> None:
    _change(engine, lambda s: editions.pin(s, news.edition_id, news.sports, top=True, actor=ACTOR))
    ids = _ids(_select(engine, news.world))
    assert ids["p@example.org"] == (news.sports, news.politics_new, news.politics_old)
    assert ids["e@example.org"] == (news.sports, news.economy)
    assert ids["s@example.org"] == (news.sports,)
    subject, html, _ = _emails(settings, _select(engine, news.world))["e@example.org"]
    assert "نهائي كأس الخليج" in subject and "نهائي كأس الخليج" in html


def test_an_exclude_removes_the_article_only_where_it_was(
    engine: Engine, settings: Settings, news: News
) -> None:
    before = _select(engine, news.world)
    emails_before = _emails(settings, before)
    _change(engine, lambda s: editions.exclude(s, news.edition_id, news.economy, actor=ACTOR))
    after = _select(engine, news.world)
    ids = _ids(after)
    assert "e@example.org" not in ids  # nothing new left for them: no email
    assert [d.email for d in after.empty] == ["e@example.org"]
    assert ids["pe@example.org"] == (news.politics_new, news.politics_old)
    emails_after = _emails(settings, after)
    for untouched in ("p@example.org", "s@example.org"):
        assert emails_after[untouched] == emails_before[untouched]


def test_subject_and_note_change_only_the_words_of_the_edition(
    engine: Engine, settings: Settings, news: News
) -> None:
    before = _select(engine, news.world)
    emails_before = _emails(settings, before)
    _change(
        engine,
        lambda s: editions.set_subject(s, news.edition_id, "عاجل: {top_title}", actor=ACTOR),
    )
    after = _select(engine, news.world)
    assert _ids(after) == _ids(before)
    emails_after = _emails(settings, after)
    assert emails_after["p@example.org"][0] == "عاجل: انتخابات بلدية في الرياض"
    assert emails_after["p@example.org"][1:] == emails_before["p@example.org"][1:]
    assert emails_after["s@example.org"] == emails_before["s@example.org"]  # English: own subject
    note = "تغطية <b>خاصة</b> للانتخابات"
    with pytest.raises(InvalidInput, match="plain text"):
        _change(engine, lambda s: editions.set_note(s, news.edition_id, note, actor=ACTOR))
    note = "تغطية خاصة للانتخابات اليوم مع S&P 500\nوغدًا نتائج الفرز."
    _change(engine, lambda s: editions.set_note(s, news.edition_id, note, actor=ACTOR))
    noted = _emails(settings, _select(engine, news.world))
    assert _ids(_select(engine, news.world)) == _ids(before)
    for reader, (subject, html, text) in noted.items():
        assert subject == emails_after[reader][0]
        assert "نتائج الفرز" in html and "نتائج الفرز" in text
    html = noted["p@example.org"][1]
    # Escaped, bidi-safe, under the header and above the greeting.
    assert '<span dir="ltr">S&amp;P 500</span>' in html
    assert html.index("كلمة المحرر") < html.index("تغطية خاصة") < html.index("في نشرة اليوم")
    assert "Editor's note" in noted["s@example.org"][1]


def test_topic_order_puts_the_chosen_section_first(
    engine: Engine, settings: Settings, news: News
) -> None:
    before = _emails(settings, _select(engine, news.world))
    pe = before["pe@example.org"][1]
    assert pe.index(">سياسة<") < pe.index(">اقتصاد<")
    _change(
        engine,
        lambda s: editions.set_order(s, news.edition_id, ["economy", "politics"], actor=ACTOR),
    )
    after = _emails(settings, _select(engine, news.world))
    pe = after["pe@example.org"][1]
    assert pe.index(">اقتصاد<") < pe.index(">سياسة<")
    assert after["p@example.org"] == before["p@example.org"]


def _dispatch(
    engine: Engine, world: World, settings: Settings, port: int, now: datetime, **kw: object
) -> DispatchReport:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": 2})
    options = DispatchOptions.from_settings(settings.model_copy(update={"smtp": smtp}))

    async def go() -> DispatchReport:
        async with SmtpSender(smtp) as sender:
            dispatcher = Dispatcher(
                engine, world.daily, sender, options, RunHooks(clock=lambda: now)
            )
            return await dispatcher.run(**kw)  # type: ignore[arg-type]

    return asyncio.run(go())


def _status(engine: Engine, edition_id: int) -> str:
    with Session(engine) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        return edition.status


def test_held_edition_sends_nothing_at_its_time_and_goes_out_on_release(
    engine: Engine, settings: Settings, news: News
) -> None:
    _change(engine, lambda s: editions.hold(s, news.edition_id, actor=ACTOR))
    late = NOW + timedelta(hours=8)  # the scheduler's 6 h lateness limit has passed meanwhile
    with SmtpSink() as sink:
        report = _dispatch(engine, news.world, settings, sink.port, NOW)
        assert (report.waiting, report.queued, report.sent) == (4, 0, 0)
        assert sink.messages == []
        with Session(engine) as session:
            assert session.exec(select(Delivery)).all() == []  # windows did not advance
        release_at = late - timedelta(minutes=5)
        _change(engine, lambda s: editions.release(s, news.edition_id, actor=ACTOR, now=release_at))
        assert _status(engine, news.edition_id) == "draft"
        report = _dispatch(
            engine, news.world, settings, sink.port, late, max_lateness=timedelta(hours=6)
        )
        assert (report.waiting, report.late, report.sent) == (0, 0, 4)
        assert sorted(sink.recipients()) == sorted(
            ["p@example.org", "e@example.org", "s@example.org", "pe@example.org"]
        )
    assert _status(engine, news.edition_id) == "sent"


def test_holding_an_edition_that_is_going_out_stops_the_rest(
    engine: Engine, settings: Settings, news: News
) -> None:
    with SmtpSink() as sink:
        report = _dispatch(engine, news.world, settings, sink.port, NOW, limit=1)
        assert report.sent == 1
        _change(engine, lambda s: editions.hold(s, news.edition_id, actor=ACTOR))
        report = _dispatch(engine, news.world, settings, sink.port, NOW + timedelta(minutes=5))
        assert report.sent == 0 and len(sink.messages) == 1
        _change(engine, lambda s: editions.release(s, news.edition_id, actor=ACTOR, now=NOW))
        assert _status(engine, news.edition_id) == "sending"
        report = _dispatch(engine, news.world, settings, sink.port, NOW + timedelta(minutes=10))
        assert report.sent == 3 and len(sink.messages) == 4


def test_with_approval_required_a_draft_is_not_sent_until_approved(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    world.daily.needs_approval = True
    session.add(world.daily)
    session.commit()
    add_reader(session, world, "p@example.org", ["politics"])
    add_article(session, world, "انتخابات", ["politics"], NOW - timedelta(hours=1))
    with SmtpSink() as sink:
        report = _dispatch(engine, world, settings, sink.port, NOW)
        assert (report.waiting, report.sent) == (1, 0) and sink.messages == []
        # The edition now exists as a draft, for editors to see and approve.
        draft = session.exec(select(Edition).where(Edition.local_date == DAY)).one()
        assert draft.status == "draft"
        _change(engine, lambda s: editions.approve(s, draft.id or 0, actor=ACTOR, now=NOW))
        report = _dispatch(engine, world, settings, sink.port, NOW + timedelta(minutes=5))
        assert report.sent == 1 and sink.recipients() == ["p@example.org"]
    assert _status(engine, draft.id or 0) == "sent"


def test_without_approval_a_draft_goes_out_at_its_time(
    engine: Engine, settings: Settings, news: News
) -> None:
    assert _status(engine, news.edition_id) == "draft"
    with SmtpSink() as sink:
        assert _dispatch(engine, news.world, settings, sink.port, NOW).sent == 4
    assert _status(engine, news.edition_id) == "sent"


def _message(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _titles(html: str, titles: list[str]) -> list[str]:
    """The given titles in the order the HTML shows them."""
    return sorted((t for t in titles if t in html), key=html.index)


def test_sent_digests_match_what_the_editor_previewed(
    engine: Engine, settings: Settings, news: News
) -> None:
    # Scenario: once the news is in, an editor leads with an older story, sets subject and
    # note, approves; the scheduler sends half an hour later.
    early = NOW - timedelta(minutes=30)
    with Session(engine) as session:
        editions.pin(session, news.edition_id, news.politics_old, actor=ACTOR)
        editions.set_subject(session, news.edition_id, "{top_title} وأخبار أخرى", actor=ACTOR)
        editions.set_note(session, news.edition_id, "صباح الخير من غرفة الأخبار.", actor=ACTOR)
        editions.approve(session, news.edition_id, actor=ACTOR, now=early)
        session.commit()
    found = overview(engine, settings, news.edition_id, now=early)
    assert sum(v.subscribers for v in found.segments) == 4
    renderer = Renderer(RenderOptions.from_settings(settings))
    titles = [
        "انتخابات بلدية في الرياض",
        "قانون الانتخاب الجديد",
        "أسعار النفط ترتفع",
        "نهائي كأس الخليج",
    ]
    seen = {}
    for view in found.segments:
        message = render_preview(renderer, view.segment, view.sample_name)
        for address in view.sample:
            seen[address] = (message.subject, _titles(message.html, titles))
    with SmtpSink() as sink:
        assert _dispatch(engine, news.world, settings, sink.port, NOW).sent == 4
        for received in sink.messages:
            message = _message(received.data)
            html = message.get_body(("html",))
            assert html is not None
            body = str(html.get_content())
            assert "صباح الخير من غرفة الأخبار." in body
            assert (str(message["Subject"]), _titles(body, titles)) == seen[received.rcpt_tos[0]]
    assert seen["p@example.org"][1] == ["قانون الانتخاب الجديد", "انتخابات بلدية في الرياض"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, n: editions.pin(s, n.edition_id, n.outside, actor=ACTOR), "outside the window"),
        (lambda s, n: editions.pin(s, n.edition_id, n.economy, actor=ACTOR), "excluded"),
        (lambda s, n: editions.exclude(s, n.edition_id, n.politics_new, actor=ACTOR), "pinned"),
        (lambda s, n: editions.set_subject(s, n.edition_id, "عاجل\nBcc: x", actor=ACTOR), "line"),
        (lambda s, n: editions.set_subject(s, n.edition_id, "خ" * 500, actor=ACTOR), "at most"),
        (lambda s, n: editions.set_subject(s, n.edition_id, "{__class__}", actor=ACTOR), "unknown"),
        (lambda s, n: editions.set_note(s, n.edition_id, "<b>عاجل</b>", actor=ACTOR), "markup"),
        (lambda s, n: editions.set_note(s, n.edition_id, "&lt;", actor=ACTOR), "markup"),
        (lambda s, n: editions.set_note(s, n.edition_id, "م" * 601, actor=ACTOR), "at most"),
        (lambda s, n: editions.set_order(s, n.edition_id, ["culture"], actor=ACTOR), "unknown"),
        (lambda s, n: editions.release(s, n.edition_id, actor=ACTOR, now=NOW), "not held"),
        (lambda s, n: editions.unpin(s, n.edition_id, n.sports, actor=ACTOR), "not pinned"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(
    engine: Engine, session: Session, news: News, change: object, message: str
) -> None:
    news.outside = add_article(  # type: ignore[attr-defined]
        session, news.world, "خبر قديم", ["politics"], NOW - timedelta(days=9)
    )
    _change(engine, lambda s: editions.pin(s, news.edition_id, news.politics_new, actor=ACTOR))
    _change(engine, lambda s: editions.exclude(s, news.edition_id, news.economy, actor=ACTOR))
    before = _snapshot(engine, news.edition_id)
    with Session(engine) as fresh, pytest.raises(InvalidInput, match=message):
        change(fresh, news)  # type: ignore[operator]
        fresh.commit()
    assert _snapshot(engine, news.edition_id) == before


def test_a_sent_edition_cannot_be_approved_or_changed(
    engine: Engine, settings: Settings, news: News
) -> None:
    with SmtpSink() as sink:
        _dispatch(engine, news.world, settings, sink.port, NOW)
    before = _snapshot(engine, news.edition_id)
    for change, message in (
        (lambda s: editions.approve(s, news.edition_id, actor=ACTOR, now=NOW), "already sent"),
        (lambda s: editions.pin(s, news.edition_id, news.sports, actor=ACTOR), "already sent"),
        (lambda s: editions.set_note(s, news.edition_id, "متأخر", actor=ACTOR), "already sent"),
    ):
        with Session(engine) as session, pytest.raises(InvalidInput, match=message):
            change(session)
    assert _snapshot(engine, news.edition_id) == before


def test_changing_an_approved_edition_takes_the_approval_back_and_every_action_is_recorded(
    engine: Engine, news: News
) -> None:
    with Session(engine) as session:
        editions.approve(session, news.edition_id, actor="a@example.org", now=NOW)
        edition = editions.pin(session, news.edition_id, news.sports, actor="b@example.org")
        assert edition.status == "draft" and edition.approved_by is None
        session.commit()
        history = editions.actions(session, news.edition_id)
    assert [(a.actor, a.action) for a in history] == [
        ("a@example.org", "approve"),
        ("b@example.org", "pin"),
    ]
    assert "approval withdrawn" in history[1].detail


def _snapshot(engine: Engine, edition_id: int) -> tuple[object, ...]:
    with Session(engine) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        actions = session.exec(select(EditorAction)).all()
        return (
            edition.status,
            edition.pinned_ids,
            edition.top_ids,
            edition.excluded_ids,
            edition.subjects,
            edition.note,
            edition.topic_order,
            len(actions),
        )


def test_preview_of_one_reader_shows_the_pinned_lead(
    engine: Engine, settings: Settings, news: News
) -> None:
    from digest.preview.edition import subscriber_segment

    _change(engine, lambda s: editions.pin(s, news.edition_id, news.politics_old, actor=ACTOR))
    found = subscriber_segment(engine, settings, news.edition_id, "pe@example.org", now=NOW)
    assert found is not None
    segment, _name = found
    assert [a.id for a in segment.articles][:1] == [news.politics_old]
    assert segment.lead == 1
    renderer = Renderer(RenderOptions.from_settings(settings))
    html = renderer.compile_digest(segment).personalise(Recipient()).html
    assert re.search("أبرز الأخبار.*قانون الانتخاب الجديد.*سياسة", html, re.S)


def test_view_in_browser_shows_the_lead_and_note_as_sent(
    engine: Engine, settings: Settings, news: News
) -> None:
    from digest.preview.delivery import load_delivery

    with Session(engine) as session:
        editions.pin(session, news.edition_id, news.sports, top=True, actor=ACTOR)
        editions.set_note(session, news.edition_id, "صباح الخير", actor=ACTOR)
        session.commit()
    with SmtpSink() as sink:
        assert _dispatch(engine, news.world, settings, sink.port, NOW).sent == 4
    with Session(engine) as session:
        rows = session.exec(select(Delivery)).all()
    (delivery,) = [d for d in rows if d.article_ids == [news.sports, news.economy]]
    segment = load_delivery(engine, delivery.id or 0).segment  # e@: economy only
    assert [a.id for a in segment.articles] == [news.sports, news.economy]
    assert (segment.lead, segment.note) == (1, "صباح الخير")
