"""`digest send` and `digest send-test` through the CLI."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from digest.db.models import Edition
from subscribers.models import Suppression
from tests.helpers.cli import Cli
from tests.helpers.smtp_sink import EVERYONE, SmtpSink
from tests.helpers.template_overrides import override, replace
from tests.helpers.world import add_article, add_reader, make_world


def test_send_to_dir_writes_eml_and_a_second_run_sends_nothing(
    cli: Cli, session: Session, tmp_path: Path
) -> None:
    world = make_world(session, hour=0)
    add_reader(session, world, "a@example.org", ["politics"], timezone="UTC")
    add_reader(session, world, "b@example.org", ["sports"], timezone="UTC")
    now = datetime.now(UTC)
    add_article(session, world, "خبر سياسي", ["politics"], now - timedelta(hours=1))
    out = tmp_path / "eml"
    first = json.loads(cli.ok("send", "--list", "daily", "--to-dir", str(out), "--json").stdout)
    assert (first["due"], first["sent"], first["skipped_empty"]) == (2, 1, 1)
    (written,) = sorted(out.glob("*.eml"))
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert message["To"] == "a@example.org"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    second = json.loads(cli.ok("send", "--list", "daily", "--to-dir", str(out), "--json").stdout)
    assert (second["due"], second["sent"]) == (0, 0)
    assert len(list(out.glob("*.eml"))) == 1


def test_send_errors_are_one_line(cli: Cli, session: Session) -> None:
    make_world(session)
    assert "unknown list 'nope'" in cli("send", "--list", "nope").stderr
    bad = cli("send", "--list", "daily", "--date", "29/11/2026")
    assert bad.exit_code == 1 and "--date '29/11/2026'" in bad.stderr
    with SmtpSink() as sink:
        port = sink.port
    down = cli("--set", f"smtp.port={port}", "send", "--list", "daily")
    assert down.exit_code == 1
    assert f"127.0.0.1:{port}" in down.stderr and "Traceback" not in down.output


def test_send_test_goes_through_smtp_with_test_subject(cli: Cli, session: Session) -> None:
    world = make_world(session)
    add_article(session, world, "أسعار النفط", ["economy"], datetime.now(UTC) - timedelta(hours=1))
    with SmtpSink() as sink:
        result = cli(
            "--set",
            f"smtp.port={sink.port}",
            "send-test",
            "--list",
            "daily",
            "--to",
            "editor@example.org",
            "--topics",
            "economy",
        )
        assert result.exit_code == 0, result.output
        (received,) = sink.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert str(message["Subject"]).startswith("[test] ")
    body = message.get_body(("plain",))
    assert body is not None and "أسعار النفط" in str(body.get_content())
    html = message.get_body(("html",))
    assert html is not None
    content = str(html.get_content())
    assert "أسعار النفط" in content
    assert "/o/" not in content and "/c/" not in content  # tracking off


def test_a_run_the_breaker_stops_says_why_in_one_line_and_suppresses_nobody(
    cli: Cli, session: Session
) -> None:
    # Scenario: a relay answering a bare 550 to every RCPT (it does not relay for us).
    world = make_world(session, hour=0)
    for i in range(30):
        add_reader(session, world, f"r{i}@example{i}.org", ["politics"], timezone="UTC")
    add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 550, reply="550 relay not permitted")
        result = cli("--set", f"smtp.port={sink.port}", "send", "--list", "daily")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "sending stopped by the breaker: 20 of the last 20 messages refused" in line
    assert "'550 relay not permitted' ×20" in line and "Nothing was suppressed" in line
    assert "Traceback" not in result.output
    assert session.exec(select(Suppression)).all() == []
    session.expire_all()
    assert session.exec(select(Edition)).one().status == "held"


def test_a_publishers_template_that_breaks_stops_the_send_with_exit_2_and_sends_nothing(
    cli: Cli, session: Session, tmp_path: Path
) -> None:
    world = make_world(session, hour=0)
    add_reader(session, world, "a@example.org", ["politics"], timezone="UTC")
    add_article(session, world, "خبر سياسي", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    broken = tmp_path / "broken"
    override(broken, "email/digest.txt.j2", replace("{%", "{% if %}{%"))
    quiet = tmp_path / "quiet"  # the unsubscribe link shown only under an editor's note
    override(
        quiet,
        "email/partials/footer.txt.j2",
        replace("{% if unsubscribe_url %}", "{% if unsubscribe_url and note %}"),
    )
    with SmtpSink() as sink:
        for folder, says in ((broken, "email/digest.txt.j2:"), (quiet, "unsubscribe link")):
            result = cli(
                "--set", f"smtp.port={sink.port}", "--set", f"render.templates_dir={folder}",
                "send", "--list", "daily",
            )  # fmt: skip
            assert result.exit_code == 2, result.output
            assert f"render.templates_dir ({folder})" in result.stderr
            assert says in result.stderr and "Traceback" not in result.output
            assert len(result.stderr.strip().splitlines()) == 1
        assert sink.messages == []
