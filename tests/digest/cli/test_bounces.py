"""`digest bounces list | show`, and `digest stats` with what came back."""

from __future__ import annotations

import json

from sqlalchemy import Engine, update
from sqlmodel import Session

from digest.config import Settings
from digest.db.models import InboundKind
from digest.db.tables import EDITION
from digest.inbound.process import Processor
from digest.inbound.verdicts import Received, Source, Verdict
from digest.tracking.verp import VerpKind, VerpRef
from subscribers import people
from subscribers.models import SuppressionReason
from tests.helpers.cli import Cli
from tests.helpers.outbox import NOW
from tests.helpers.returns import Sent, add_event, sent_edition

K = InboundKind


def _sent_with_returns(engine: Engine, session: Session) -> Sent:
    sent = sent_edition(engine, session, n=4)
    add_event(session, sent, K.HARD_BOUNCE, "r0@example.org", minutes=1, smtp_code=550,
              status="5.1.1", diagnostic="550 5.1.1 <r0@example.org>: user unknown",
              action="suppressed")  # fmt: skip
    add_event(session, sent, K.SOFT_BOUNCE, "r1@example.org", minutes=2, status="4.2.2",
              action="soft bounce 1 of 3")  # fmt: skip
    add_event(session, sent, K.COMPLAINT, "r2@example.org", minutes=3, source="postmark",
              action="unsubscribed from every list, suppressed")  # fmt: skip
    add_event(session, sent, K.UNSUBSCRIBE, "r3@example.org", minutes=4, action="unsubscribed")
    add_event(session, None, K.AUTO_REPLY, "away@example.org", minutes=5)
    return sent


def test_list_filters_and_prints_one_line_per_event(
    cli: Cli, engine: Engine, session: Session
) -> None:
    sent = _sent_with_returns(engine, session)
    lines = cli.ok("bounces", "list").stdout.splitlines()
    assert [line.split()[2] for line in lines] == [
        "auto_reply", "unsubscribe", "complaint", "soft_bounce", "hard_bounce",
    ]  # fmt: skip
    assert "r0@example.org  550 5.1.1" in lines[-1] and "→ suppressed" in lines[-1]
    assert "user unknown" in lines[-1]
    hard = cli.ok("bounces", "list", "--type", "HARD_BOUNCE", "--json").stdout
    (row,) = json.loads(hard)
    assert (row["address"], row["smtp_code"], row["status"]) == ("r0@example.org", 550, "5.1.1")
    assert row["edition_id"] == sent.edition_id and row["list_slug"] == "daily"
    since = json.loads(cli.ok("bounces", "list", "--since", "2026-11-29T09:03+03:00",
                              "--json").stdout)  # fmt: skip
    assert [r["kind"] for r in since] == ["auto_reply", "unsubscribe", "complaint"]
    on_list = json.loads(cli.ok("bounces", "list", "--list", "daily", "--json").stdout)
    assert len(on_list) == 4  # the auto-reply was traced to nothing
    edition = cli.ok("bounces", "list", "--edition", str(sent.edition_id), "--limit", "2").stdout
    assert len(edition.splitlines()) == 3 and "--limit shows more" in edition
    assert cli.ok("bounces", "list", "--edition", "999").stdout == "no inbound events\n"


def test_list_refuses_bad_options_on_stderr(cli: Cli) -> None:
    for args, message in (
        (("--type", "bounced"), "use one of hard_bounce, soft_bounce"),
        (("--since", "yesterday"), "--since 'yesterday' is not an ISO date"),
        (("--list", "nope"), "nope"),
    ):
        result = cli("bounces", "list", *args)
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert result.stdout == ""
    assert cli("bounces", "list", "--limit", "0").exit_code == 2


def test_show_says_why_and_lists_the_lift_after_unsuppress(
    cli: Cli, engine: Engine, session: Session
) -> None:
    sent = _sent_with_returns(engine, session)
    for email, reason in (("r1@example.org", SuppressionReason.SOFT_BOUNCE),
                          ("r2@example.org", SuppressionReason.COMPLAINT)):  # fmt: skip
        suppression = people.suppress(session, email, reason.value, note="from the inbox")
        suppression.delivery_id, suppression.edition_id = sent.deliveries[email], sent.edition_id
        session.add(suppression)
    session.commit()
    shown = cli.ok("bounces", "show", "R2@example.org").stdout.splitlines()
    assert shown[0].startswith("r2@example.org: suppressed — complaint since 2026-")
    assert f"delivery {sent.deliveries['r2@example.org']}, edition {sent.edition_id}" in shown[0]
    assert shown[1] == "1 inbound event(s), newest first:"
    assert "complaint  postmark  r2@example.org" in shown[2]
    for email in ("r1@example.org", "r2@example.org"):
        cli.ok(
            "subscribers", "unsuppress", email, "--reason", "asked by the reader", "--by", "reem"
        )
        data = json.loads(cli.ok("bounces", "show", email, "--json").stdout)
        assert data["suppressed"] is False and data["suppression"] is None
        (lift,) = data["lifted"]
        assert (lift["lifted_by"], lift["why"]) == ("reem", "asked by the reader")
        assert lift["reason"] in ("soft_bounce", "complaint")
        assert len(data["events"]) == 1
    text = cli.ok("bounces", "show", "r1@example.org").stdout.splitlines()
    assert text[0] == "r1@example.org: not suppressed"
    assert (
        text[1].startswith("lifted ") and "by reem: asked by the reader (was soft_bounce" in text[1]
    )
    nothing = cli.ok("bounces", "show", "never@example.org").stdout
    assert nothing == "never@example.org: not suppressed\nno inbound event for this address\n"
    empty = cli("bounces", "show", " ")
    assert empty.exit_code == 1 and "give an email address" in empty.stderr


def test_stats_show_bounces_complaints_and_mailto_unsubscribes(
    cli: Cli, engine: Engine, session: Session
) -> None:
    _sent_with_returns(engine, session)
    (edition,) = json.loads(cli.ok("stats", "--json").stdout)
    assert (edition["hard_bounces"], edition["soft_bounces"]) == (1, 1)
    assert (edition["complaints"], edition["mailto_unsubscribes"]) == (1, 1)
    assert edition["rates"]["hard_bounce"] == 0.25 and edition["rates"]["complaint"] == 0.25
    table = cli.ok("stats").stdout
    for row in ("hard bounces", "soft bounces", "complaints", "mailto unsubscribes"):
        assert row in table
    assert "25.00%" in table


def test_what_the_processor_stores_is_listed_counted_and_braked(
    cli: Cli, engine: Engine, session: Session, settings: Settings
) -> None:
    """End to end through the real processing (verdicts made by hand, as an ESP's are)."""
    sent = sent_edition(engine, session, n=4)
    with engine.begin() as connection:  # the brake judges editions still sending
        connection.execute(
            update(EDITION).where(EDITION.c.id == sent.edition_id).values(status="sending")
        )
    inbound = settings.inbound.model_copy(update={"pause_min_sample": 4})
    processor = Processor(
        engine, settings.model_copy(update={"inbound": inbound}), clock=lambda: NOW
    )

    def bounce(email: str, kind: InboundKind, n: int) -> tuple[Received, Verdict]:
        ref = VerpRef(VerpKind.BOUNCE, sent.deliveries[email])
        raw = f"bounce {n} for {email}".encode()
        verdict = Verdict(kind, address=email, status="5.1.1", smtp_code=550, verp=ref,
                          diagnostic="550 5.1.1 user unknown")  # fmt: skip
        return Received(raw, Source.POSTMARK, received_at=NOW), verdict

    handled = processor.apply(
        [
            bounce("r0@example.org", InboundKind.HARD_BOUNCE, 1),
            bounce("r1@example.org", InboundKind.AUTO_REPLY, 2),
        ]
    )
    assert [h.kind for h in handled] == [InboundKind.HARD_BOUNCE, InboundKind.AUTO_REPLY]
    (row,) = json.loads(cli.ok("bounces", "list", "--type", "hard_bounce", "--json").stdout)
    assert (row["edition_id"], row["delivery_id"]) == (
        sent.edition_id,
        sent.deliveries["r0@example.org"],
    )
    assert row["list_slug"] == "daily" and row["source"] == "postmark"
    story = json.loads(cli.ok("bounces", "show", "r0@example.org", "--json").stdout)
    assert story["suppressed"] is True and story["suppression"]["reason"] == "hard_bounce"
    assert [e["kind"] for e in story["events"]] == ["hard_bounce"]
    (edition,) = json.loads(cli.ok("stats", "--json").stdout)
    assert edition["hard_bounces"] == 1 and edition["rates"]["hard_bounce"] == 0.25
    # 1 of 4 is over the 5% limit: the brake held the edition, and `editions show` says so.
    shown = json.loads(cli.ok("editions", "show", str(sent.edition_id), "--json").stdout)
    assert shown["status"] == "held" and shown["brake"] is not None
    assert "hard-bounce rate 25.00%" in shown["brake"]["detail"]
