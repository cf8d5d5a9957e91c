"""`digest feeds`, `digest ingest` and `digest articles` through the CLI, errors included."""

from __future__ import annotations

import json
from pathlib import Path

from digest import samples
from tests.helpers.cli import Cli
from tests.helpers.feed_docs import rss
from tests.helpers.feed_server import Route, serving


def _write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


def _item(n: int, **extra: object) -> dict[str, object]:
    return {"title": f"خبر {n}", "link": f"https://news.example.org/{n}", "guid": f"g-{n}", **extra}


def test_add_list_remove_feeds(cli: Cli, tmp_path: Path) -> None:
    cli.ok("topics", "add", "economy", "--name", "اقتصاد")
    path = _write(tmp_path / "eco.xml", rss([_item(1)]))
    assert cli.ok("feeds", "add", path, "-t", "economy").stdout.strip() == f"feed {path} added"
    listed = json.loads(cli.ok("feeds", "list", "--json").stdout)
    assert listed == [
        {
            "url": path,
            "title": "",
            "topics": ["economy"],
            "etag": None,
            "last_modified": None,
            "last_fetched_at": None,
            "last_error": None,
        }
    ]
    assert "never" in cli.ok("feeds", "list").stdout  # not fetched yet
    cli.ok("ingest")
    cli.ok("feeds", "remove", path)
    assert json.loads(cli.ok("feeds", "list", "--json").stdout) == []
    articles = json.loads(cli.ok("articles", "list", "--json").stdout)
    assert [a["guid"] for a in articles] == ["g-1"]  # the articles stay
    assert articles[0]["feed"] is None


def test_feed_errors_are_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "f.xml", rss([_item(1)]))
    result = cli("feeds", "add", path, "-t", "nope")
    assert (result.exit_code, result.stderr.strip()) == (
        1,
        "error: unknown topic 'nope': see `digest topics list`",
    )
    cli.ok("feeds", "add", path)
    assert cli("feeds", "add", path).stderr.strip() == f"error: feed {path} already exists"
    missing = tmp_path / "missing.xml"
    assert cli("feeds", "add", str(missing)).stderr.strip() == (
        f"error: feed file {missing} does not exist"
    )
    assert "only http(s) URLs and local files" in cli("feeds", "add", "ftp://x.org/f").stderr
    assert cli("feeds", "remove", "https://nowhere.example/rss").stderr.strip() == (
        "error: no feed https://nowhere.example/rss: see `digest feeds list`"
    )


def test_ingest_reports_each_feed_and_fails_when_one_fails(cli: Cli, tmp_path: Path) -> None:
    good = _write(tmp_path / "good.xml", rss([_item(1), _item(2), {"title": "بلا رابط"}]))
    bad = _write(tmp_path / "bad.xml", b"<rss><channel><item><title>a & b</item>")
    html = _write(tmp_path / "page.xml", b"<html><body>hi</body></html>")
    for path in (bad, good, html):
        cli.ok("feeds", "add", path)

    result = cli("ingest")

    assert result.exit_code == 1
    assert f"error: {bad}: malformed XML" in result.stderr
    assert f"error: {html}: this is an HTML page, not a feed" in result.stderr
    assert f"{good}: 2 new, 0 updated, 0 unchanged, 1 skipped" in result.stdout
    assert "skipped بلا رابط: no link (and the guid is not a URL)" in result.stdout
    assert "3 feed(s), 2 new article(s)" in result.stdout
    feeds = {f["url"]: f for f in json.loads(cli.ok("feeds", "list", "--json").stdout)}
    assert feeds[bad]["last_error"].startswith("malformed XML")
    assert feeds[good]["last_error"] is None

    only = cli.ok("ingest", "--feed", good)
    assert f"{good}: 0 new, 0 updated, 2 unchanged" in only.stdout


def test_ingest_over_http_then_not_modified(cli: Cli) -> None:
    with serving() as server:
        server.routes["/rss"] = Route(rss([_item(1)]), etag='"abc"')
        cli.ok("feeds", "add", server.url("/rss"))
        assert "1 new" in cli.ok("ingest").stdout
        assert f"{server.url('/rss')}: not modified" in cli.ok("ingest").stdout
        assert server.requests_to("/rss")[1].headers["if-none-match"] == '"abc"'


def test_articles_list_filters_and_shows_why(cli: Cli, tmp_path: Path) -> None:
    for topic in samples.sample_topics():
        args = [f"--keyword={k}" for k in topic.keywords] + [f"--alias={a}" for a in topic.aliases]
        cli.ok("topics", "add", topic.slug, "--name", topic.name, *args)
    cli.ok("feeds", "add", str(samples.feed_path()), "-t", "politics")
    cli.ok("ingest")

    economy = json.loads(cli.ok("articles", "list", "--topic", "economy", "--json").stdout)
    assert {a["guid"] for a in economy} == {"sample-0001", "sample-0002", "sample-0003"}
    oil = next(a for a in economy if a["guid"] == "sample-0002")
    assert {"slug": "economy", "reason": "keyword", "detail": "نفط, أوبك"} in oil["topics"]
    assert {"slug": "politics", "reason": "feed", "detail": str(samples.feed_path())} in oil[
        "topics"
    ]
    assert oil["ingested_at"] and oil["published_at"] == "2026-11-28T02:10:00+00:00"

    assert json.loads(cli.ok("articles", "list", "--since", "2999-01-01", "--json").stdout) == []
    assert len(json.loads(cli.ok("articles", "list", "--limit", "3", "--json").stdout)) == 3
    assert "sample" not in cli.ok("articles", "list").stdout  # the table shows titles
    bad = cli("articles", "list", "--since", "yesterday")
    assert bad.exit_code == 1 and "is not an ISO date" in bad.stderr
    assert "unknown topic 'nope'" in cli("articles", "list", "--topic", "nope").stderr


def test_retag_after_a_new_topic(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "f.xml", rss([_item(1, title="قمة العرب"), _item(2)]))
    cli.ok("feeds", "add", path)
    cli.ok("ingest")
    cli.ok("topics", "add", "arab-world", "--name", "العالم العربي", "-k", "عرب")
    assert cli.ok("ingest", "--retag").stdout.strip() == "re-tagged: 1 article(s) changed topics"
    tagged = json.loads(cli.ok("articles", "list", "--topic", "arab-world", "--json").stdout)
    assert [a["guid"] for a in tagged] == ["g-1"]
