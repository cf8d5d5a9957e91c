"""Untrusted text to the terminal: no escape sequence, control or bidi override gets through,
and Rich markup in a name is shown as written, through every command that prints data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session

from digest.catalog import topics
from digest.cli.ingest import _print
from digest.cli.terminal import markup, plain
from digest.db.models import Article, Edition, Feed, Topic
from digest.ingest.pipeline import FeedReport, FeedStatus, Skipped
from subscribers.lists import ListSpec, create_list
from subscribers.models import MailingList, Subscriber
from subscribers.people import Consent, Person, subscribe
from tests.helpers.cli import Cli

# Stored before input was cleaned (or by a path that forgot): markup that closes a tag never
# opened, clear-screen, a window-title OSC, a right-to-left override, a C1 CSI, a line break.
HOSTILE = "Reem [/bold] \x1b[2J\x1b]0;pwned\x07 \u202egnp.exe \x9b31m\nend"
SEQUENCES = ("\x1b", "\x07", "\u202e", "\x9b", "[2J", "pwned", "31m")


def _clean(output: str) -> None:
    for sequence in SEQUENCES:
        assert sequence not in output, (sequence, output)


def _shown(output: str) -> None:
    _clean(output)
    assert "[/bold]" in output  # markup in a name is text, not a tag
    assert "gnp.exe" in output


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x1b[2Jb", "ab"),
        ("a\x1b[38;5;196mred\x1b[0m", "ared"),
        ("x\x1b]0;title\x07y", "xy"),
        ("x\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\y", "xlinky"),
        ("x\x1bPdevice\x1b\\y", "xy"),
        ("x\x9b2Jy\x9d0;t\x9cz", "xyz"),
        ("unterminated \x1b]0;forever", "unterminated"),
        ("\u202eexe.png\u202c \u2066x\u2069", "exe.png x"),
        ("line\nbreak\ttab\r\x00nul\x7f", "line break tab nul"),
        ("سلام\u200f عليكم\u200c\u200d", "سلام\u200f عليكم\u200c\u200d"),
        (None, ""),
    ],
)
def test_plain_removes_sequences_and_controls_whole(raw: str | None, expected: str) -> None:
    assert plain(raw) == expected


def test_markup_escapes_tags_and_a_trailing_backslash() -> None:
    assert markup("[/bold] [red]x") == "\\[/bold] \\[red]x"
    assert markup("end\\") == "end\\\\"


def _seed(session: Session) -> str:
    """A topic, a list, a feed, an article and a subscriber, each named HOSTILE."""
    topic = topics.add_topic(session, slug="economy", name="اقتصاد", keywords=["نفط"])
    daily = create_list(session, ListSpec(slug="daily", name="النشرة", topic_ids=[topic.id or 0]))
    person = Person("reem@example.org", "Asia/Riyadh", name="Reem")
    subscribe(session, person, daily, topic_ids=[topic.id or 0], consent=Consent(confirmed=True))
    session.add(Feed(url="https://news.example.org/rss.xml"))
    session.add(Article(url="https://news.example.org/1", title="t", summary="s"))
    session.commit()
    for model, column in (
        (Topic, "name"),
        (Topic, "name_en"),
        (MailingList, "name"),
        (MailingList, "description"),
        (Subscriber, "name"),
        (Feed, "last_error"),
        (Article, "title"),
    ):
        session.execute(update(model).values({column: HOSTILE}))  # type: ignore[arg-type]
    session.commit()
    return "reem@example.org"


def test_every_listing_shows_hostile_names_safely(cli: Cli, session: Session) -> None:
    email = _seed(session)
    # `subscribers show` crashed on the closing tag: MarkupError, exit 1, a traceback.
    _shown(cli.ok("subscribers", "show", email).stdout)
    _shown(cli.ok("lists", "show", "daily").stdout)
    for command in (("lists", "list"), ("topics", "list"), ("feeds", "list"), ("articles", "list")):
        _clean(cli.ok(*command).stdout)
        assert "gnp" in cli.ok(*command).stdout


def test_json_output_keeps_the_value_but_not_the_raw_controls(cli: Cli, session: Session) -> None:
    email = _seed(session)
    for command in (
        ("subscribers", "show", email, "--json"),
        ("lists", "show", "daily", "--json"),
        ("topics", "list", "--json"),
        ("feeds", "list", "--json"),
        ("articles", "list", "--json"),
    ):
        output = cli.ok(*command).stdout
        for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
            assert raw not in output, (command, raw)
        assert HOSTILE in output.encode().decode("unicode_escape", "ignore") or HOSTILE in str(
            json.loads(output)
        )


def test_editions_show_and_list_print_subjects_notes_and_titles_safely(
    cli: Cli, session: Session
) -> None:
    _seed(session)
    cli.ok("editions", "list")  # creates today's and tomorrow's drafts
    session.execute(update(Edition).values(note=HOSTILE, subjects={"ar": HOSTILE}))
    session.commit()
    edition = session.exec(Edition.__table__.select()).first()  # type: ignore[attr-defined]
    assert edition is not None
    _clean(cli.ok("editions", "list").stdout)
    shown = cli.ok("editions", "show", str(edition.id)).stdout
    _clean(shown)
    assert "gnp.exe" in shown


def test_an_error_naming_hostile_input_is_one_clean_line(cli: Cli) -> None:
    for command in (("subscribers", "show"), ("lists", "show"), ("feeds", "remove")):
        result = cli(*command, "x\x1b[2J\x1b]0;pwned\x07\u202e\n@example.org")
        assert result.exit_code == 1
        for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
            assert raw not in result.stderr, (command, result.stderr)
        assert result.stderr.count("\n") == 1


def test_ingest_report_lines_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    _print(FeedReport(f"https://x.example/{HOSTILE}", FeedStatus.FAILED, error=HOSTILE))
    _print(FeedReport("https://x.example/", skipped=[Skipped(HOSTILE, HOSTILE)]))
    captured = capsys.readouterr()
    _clean(captured.out + captured.err)
    assert "gnp.exe" in captured.err and "skipped" in captured.out


def test_import_report_names_hostile_columns_safely(cli: Cli, tmp_path: Path) -> None:
    cli.ok("lists", "create", "daily", "--name", "النشرة")
    source = tmp_path / "people.csv"
    source.write_text(f'email,"{HOSTILE}"\nreem@example.org,x\n', encoding="utf-8")
    result = cli("subscribers", "import", str(source), "--list", "daily")
    _clean(result.output)
