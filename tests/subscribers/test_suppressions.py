"""Lifting suppressions (subscribers/suppressions.py, `digest subscribers unsuppress`): one
address, or one run's hard bounces, each lift kept in the audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from digest.errors import InvalidInput, NotFound
from subscribers.models import LiftedSuppression, Suppression
from subscribers.people import is_suppressed, suppress
from subscribers.suppressions import (
    Audit,
    RunFilter,
    lifted,
    run_suppressions,
    unsuppress,
    unsuppress_run,
)
from tests.helpers.cli import Cli

RUN = datetime(2026, 11, 29, 6, tzinfo=UTC)
AUDIT = Audit("cli:ops", "relay misconfigured on 29 Nov")


def _bounce(
    session: Session,
    email: str,
    *,
    code: int = 550,
    enhanced: str | None = "5.1.1",
    at: datetime = RUN,
    list_id: int = 1,
    edition_id: int = 10,
) -> None:
    session.add(
        Suppression(
            email=email,
            reason="hard_bounce",
            note=f"{code} {enhanced or ''} no such user",
            created_at=at,
            smtp_code=code,
            enhanced=enhanced,
            delivery_id=100,
            edition_id=edition_id,
            list_id=list_id,
        )
    )
    session.commit()


def _emails(rows: list[Suppression]) -> list[str]:
    return sorted(row.email for row in rows)


def test_one_address_is_lifted_in_any_spelling_with_an_audit_line(session: Session) -> None:
    _bounce(session, "Reem@Example.org")
    line = unsuppress(session, "reem@EXAMPLE.org", AUDIT)
    session.commit()
    assert not is_suppressed(session, "Reem@Example.org")
    assert (line.email, line.reason, line.smtp_code, line.enhanced) == (
        "Reem@Example.org",
        "hard_bounce",
        550,
        "5.1.1",
    )
    assert (line.lifted_by, line.why, line.edition_id) == ("cli:ops", AUDIT.why, 10)
    assert line.suppressed_at == RUN
    assert [a.why for a in lifted(session, "reem@example.org")] == [AUDIT.why]
    with pytest.raises(NotFound, match="is not suppressed"):
        unsuppress(session, "reem@example.org", AUDIT)


def test_the_audit_of_an_address_is_found_in_any_idn_spelling(session: Session) -> None:
    # lower(email) matched only the spelling lifted; the audit goes by the address's key.
    _bounce(session, "User@Bücher.de")
    unsuppress(session, "user@xn--bcher-kva.de", AUDIT)
    session.commit()
    for spelling in ("user@bücher.de", "USER@XN--BCHER-KVA.DE", "user@BÜCHER.de"):
        assert [a.email for a in lifted(session, spelling)] == ["User@Bücher.de"], spelling
    assert lifted(session, "user\x00@bücher.de") == []


def test_a_lift_needs_a_reason_and_cleans_it(session: Session) -> None:
    _bounce(session, "a@example.org")
    with pytest.raises(InvalidInput, match="say why"):
        unsuppress(session, "a@example.org", Audit("cli:ops", "  \u202e "))
    line = unsuppress(session, "a@example.org", Audit("cli:ops", "bounced\x1b[2J by mistake"))
    assert "\x1b" not in line.why and line.why.startswith("bounced")


def test_one_runs_bounces_are_lifted_and_nothing_else(session: Session) -> None:
    _bounce(session, "before@example.org", at=RUN - timedelta(days=2))
    _bounce(session, "a@example.org")
    _bounce(session, "b@example.org", at=RUN + timedelta(minutes=1))
    _bounce(session, "bare@example.org", enhanced=None)
    _bounce(session, "other-list@example.org", list_id=2)
    _bounce(session, "full@example.org", code=552, enhanced="5.2.1")
    suppress(session, "complained@example.org", "complaint")
    suppress(session, "manual@example.org", "manual")
    session.commit()

    since = RunFilter(since=RUN)
    assert len(run_suppressions(session, since)) == 5  # never complaints nor manual ones
    assert _emails(run_suppressions(session, RunFilter(RUN, reason_code="5.1.1"))) == [
        "a@example.org",
        "b@example.org",
        "other-list@example.org",
    ]
    assert len(run_suppressions(session, RunFilter(RUN, reason_code="550"))) == 4
    assert len(run_suppressions(session, RunFilter(RUN, reason_code="5.2"))) == 1
    with pytest.raises(InvalidInput, match="reason code"):
        run_suppressions(session, RunFilter(RUN, reason_code="relay"))

    one_list = RunFilter(RUN, reason_code="550", list_id=1, edition_id=10)
    seen = unsuppress_run(session, one_list, AUDIT, dry_run=True)
    assert len(seen) == 3 and len(session.exec(select(Suppression)).all()) == 8
    done = unsuppress_run(session, one_list, AUDIT)
    session.commit()
    assert _emails(done) == ["a@example.org", "b@example.org", "bare@example.org"]
    left = {s.email for s in session.exec(select(Suppression))}
    assert left == {
        "before@example.org",
        "other-list@example.org",
        "full@example.org",
        "complained@example.org",
        "manual@example.org",
    }
    assert len(session.exec(select(LiftedSuppression)).all()) == 3


def test_the_command_lifts_one_address_or_a_run(cli: Cli, session: Session) -> None:
    _bounce(session, "one@example.org")
    _bounce(session, "a@example.org")
    _bounce(session, "b@example.org", enhanced="5.7.1")
    out = cli.ok("subscribers", "unsuppress", "one@example.org", "--reason", "typo fixed")
    assert "one@example.org: suppression (hard_bounce) lifted" in out.stdout
    assert cli("subscribers", "unsuppress", "one@example.org").exit_code == 1  # no --reason
    since = ["--since", "2026-11-29T09:00+03:00", "--reason-code", "5.1.1", "--reason", "relay"]
    dry = cli.ok("subscribers", "unsuppress", *since, "--dry-run")
    assert "1 hard bounce suppression(s) would be lifted (dry run)" in dry.stdout
    assert "a@example.org" in dry.stdout
    done = cli.ok("subscribers", "unsuppress", *since, "--by", "ops@example.org")
    assert "1 hard bounce suppression(s) lifted" in done.stdout
    session.expire_all()
    assert [s.email for s in session.exec(select(Suppression))] == ["b@example.org"]
    audit = session.exec(select(LiftedSuppression).order_by(LiftedSuppression.id)).all()
    assert [(a.email, a.lifted_by) for a in audit][-1] == ("a@example.org", "ops@example.org")
    both = cli("subscribers", "unsuppress", "x@example.org", "--since", "2026-11-29")
    assert both.exit_code == 1 and "either an EMAIL or --since" in both.stderr
