"""An import batch: the admin's assertion of consent activates, never re-opens a withdrawal."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from subscribers.imports import ImportOptions, import_csv
from subscribers.lists import ListSpec, create_list
from subscribers.models import ConsentEvent, MailingList, Subscriber, Subscription
from subscribers.people import Consent, Person, subscribe, suppress, unsubscribe

OPTIONS = ImportOptions(default_timezone="Asia/Riyadh")


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("email,name,topics,timezone,hour\n" + body, encoding="utf-8")
    return path


def _statuses(session: Session) -> dict[str, tuple[str, str]]:
    session.expire_all()
    rows = session.exec(
        select(Subscriber.email, Subscription.status, Subscription.source).where(
            Subscription.subscriber_id == Subscriber.id
        )
    ).all()
    return {email: (status, source) for email, status, source in rows}


def test_import_activates_unconfirmed_and_reports_it(
    tmp_path: Path, engine: Engine, session: Session, topics: dict[str, int]
) -> None:
    # Scenario (item 6): an unconfirmed subscription was reported "updated" and stayed
    # unconfirmed, while the README says imported people are active.
    weekly = create_list(session, ListSpec(slug="weekly", name="أسبوعية", double_opt_in=True))
    subscribe(session, Person("wait@example.org", "Asia/Riyadh"), weekly, consent=Consent("web"))
    subscribe(
        session, Person("on@example.org", "Asia/Riyadh"), weekly, consent=Consent(confirmed=True)
    )
    session.commit()
    path = _csv(tmp_path, "WAIT@example.org,,,,\non@example.org,,,,9\nnew@example.org,,,,\n")
    report = import_csv(engine, path, weekly, topics, OPTIONS)
    assert (report.created, report.activated, report.updated) == (1, 1, 1)
    assert report.as_dict()["activated"] == 1
    assert _statuses(session) == {
        "wait@example.org": ("active", "import"),
        "on@example.org": ("active", "cli"),
        "new@example.org": ("active", "import"),
    }
    # The consent history records the import's step for each subscription it activated.
    events = session.exec(select(ConsentEvent).where(ConsentEvent.action == "imported")).all()
    assert len(events) == 2 and {e.source for e in events} == {"import"}


def test_withdrawn_and_suppressed_spellings_are_skipped_with_the_reason(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    # Scenario (item 4): `LEFT@` re-subscribed someone who unsubscribed as `left@`, and
    # `Bounced@` passed the suppression of `bounced@`.
    suppress(session, "bounced@example.org", "hard_bounce")
    subscribe(session, Person("left@example.org", "Asia/Riyadh"), daily)
    unsubscribe(session, "left@example.org")
    session.commit()
    rejects = tmp_path / "rejects.csv"
    path = _csv(tmp_path, "Bounced@Example.org,,,,\nLEFT@example.org,,,,\n")
    options = ImportOptions("Asia/Riyadh", rejects_path=rejects)
    report = import_csv(engine, path, daily, topics, options)
    assert (report.created, report.suppressed, report.withdrawn, report.rejected) == (0, 1, 1, 0)
    assert _statuses(session) == {"left@example.org": ("unsubscribed", "cli")}
    text = rejects.read_text(encoding="utf-8")
    assert "suppressed: this address must not be mailed" in text
    assert "withdrawn: unsubscribed from this list earlier" in text


def test_case_variants_update_the_known_subscriber(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    subscribe(session, Person("Reem@example.org", "Asia/Riyadh", name="ريم"), daily)
    session.commit()
    path = _csv(tmp_path, "REEM@EXAMPLE.ORG,,politics,Africa/Cairo,8\n")
    report = import_csv(engine, path, daily, topics, OPTIONS)
    assert (report.created, report.updated) == (0, 1)
    session.expire_all()
    person = session.exec(select(Subscriber)).one()
    assert (person.email, person.name, person.timezone) == (
        "Reem@example.org",
        "ريم",
        "Africa/Cairo",
    )


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flips=st.lists(st.booleans(), min_size=60, max_size=60))
def test_random_case_variants_through_import(
    tmp_path: Path,
    engine: Engine,
    session: Session,
    daily: MailingList,
    topics: dict[str, int],
    flips: list[bool],
) -> None:
    # Item 4 as a property: whatever the case of each letter, a suppressed address stays
    # out and a known person is updated, never added again.
    def variant(address: str, offset: int) -> str:
        return "".join(
            c.swapcase() if flips[(i + offset) % len(flips)] else c for i, c in enumerate(address)
        )

    if not session.exec(select(Subscriber)).first():
        suppress(session, "spam.trap@example.org", "complaint")
        subscribe(session, Person("Known.Person@example.org", "Asia/Riyadh"), daily)
        session.commit()
    body = (
        f"{variant('spam.trap@example.org', 0)},,,,\n{variant('known.person@example.org', 7)},,,,\n"
    )
    report = import_csv(engine, _csv(tmp_path, body), daily, topics, OPTIONS)
    assert (report.created, report.updated, report.suppressed) == (0, 1, 1)
    session.expire_all()
    assert [s.email for s in session.exec(select(Subscriber))] == ["Known.Person@example.org"]
