"""`digest preview`: editors get the subscriber's email as a file or on stdout, untracked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from digest.db.models import Article, ArticleTopic, Topic
from tests.helpers.cli import Cli
from tests.helpers.render_samples import parse

SEND = datetime(2026, 11, 28, 4, tzinfo=UTC)  # 07:00 in Riyadh
EARLY = (SEND - timedelta(hours=3)).isoformat()  # the editor previews the day before its hour


def _setup(cli: Cli, session: Session) -> None:
    cli.ok("topics", "add", "economy", "--name", "اقتصاد", "--name-en", "Economy")
    cli.ok("topics", "add", "tech", "--name", "تقنية", "--name-en", "Technology")
    cli.ok("lists", "create", "daily", "--name", "النشرة اليومية", "--hour", "7")
    cli.ok(
        "subscribers", "add", "jane@example.org", "--list", "daily", "--name", "Jane",
        "--topic", "tech", "--locale", "en", "--timezone", "Asia/Riyadh",
    )  # fmt: skip
    topics = {t.slug: t.id or 0 for t in session.exec(select(Topic))}
    for number, slug, hours in ((1, "economy", 1), (2, "tech", 2), (3, "economy", 40)):
        article = Article(
            url=f"https://news.example.org/a/{number}",
            title=f"عنوان الخبر {number} عن شركة OpenAI",
            summary="ملخص الخبر.",
            ingested_at=SEND - timedelta(hours=hours),
        )
        session.add(article)
        session.flush()
        session.add(ArticleTopic(article_id=article.id or 0, topic_id=topics[slug], reason="feed"))
    session.commit()


def test_preview_writes_the_html_a_topic_mix_gets(
    cli: Cli, session: Session, tmp_path: Path
) -> None:
    _setup(cli, session)
    out = tmp_path / "preview.html"
    result = cli.ok(
        "preview", "--list", "daily", "--topics", "economy,tech", "--date", "2026-11-28",
        "--now", EARLY, "-o", str(out),
    )  # fmt: skip
    assert "2 articles" in result.stderr
    parsed = parse(out.read_text(encoding="utf-8"))
    (html,) = parsed.all("html")
    assert html.attrs["dir"] == "rtl"
    hrefs = [a.attrs["href"] for a in parsed.all("a")]
    assert "https://news.example.org/a/1" in hrefs and "https://news.example.org/a/2" in hrefs
    assert "https://news.example.org/a/3" not in hrefs  # ingested before the window
    assert not [i for i in parsed.all("img") if "/o/" in i.attrs["src"]]  # no open pixel
    visible = parsed.visible_text
    assert visible.index("اقتصاد") < visible.index("تقنية")


def test_preview_text_for_a_subscriber_on_stdout(cli: Cli, session: Session) -> None:
    _setup(cli, session)
    result = cli.ok(
        "preview", "--list", "daily", "--subscriber", "jane@example.org", "--date", "2026-11-28",
        "--now", EARLY, "--text",
    )  # fmt: skip
    assert result.stdout.startswith("Example News")
    assert "Hello Jane," in result.stdout
    assert "https://news.example.org/a/2" in result.stdout.splitlines()
    assert "https://news.example.org/a/1" not in result.stdout  # economy: not Jane's topic


def test_preview_errors_say_what_to_fix(cli: Cli, session: Session) -> None:
    _setup(cli, session)
    unknown = cli("preview", "--list", "daily", "--topics", "nope")
    assert unknown.exit_code == 1
    assert "unknown topic 'nope'" in unknown.stderr
    both = cli("preview", "--list", "daily", "--topics", "tech", "--subscriber", "jane@example.org")
    assert both.exit_code == 1 and "not both" in both.stderr
    bad_day = cli("preview", "--list", "daily", "--date", "28/11/2026")
    assert bad_day.exit_code == 1 and "--date '28/11/2026'" in bad_day.stderr
    assert "unknown list 'weekly'" in cli("preview", "--list", "weekly").stderr
    unwritable = cli("preview", "--list", "daily", "-o", "/nonexistent/dir/p.html")
    assert unwritable.exit_code == 1 and "cannot write /nonexistent/dir/p.html" in unwritable.stderr
    assert "Traceback" not in unknown.output
