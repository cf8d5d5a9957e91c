"""The shipped sample feed and its topics (used by `digest demo`)."""

from __future__ import annotations

from datetime import UTC, datetime

from mjml import mjml2html

from digest import samples
from digest.ingest.documents import parse_document
from digest.text.arabic import is_mostly_arabic
from digest.text.sanitize import html_to_text
from tests.helpers.paths import ROOT


def test_sample_feed_is_a_valid_arabic_rss_feed_of_several_topics() -> None:
    path = samples.feed_path()
    parsed = parse_document(
        path.read_bytes(),
        content_type=None,
        location=path.as_uri(),
        now=datetime(2026, 11, 29, tzinfo=UTC),
    )
    assert len(parsed.items) >= 12 and parsed.skipped == []
    assert all(is_mostly_arabic(i.title) for i in parsed.items)
    assert all(i.url.startswith("https://news.example.org/") for i in parsed.items)
    assert {i.guid for i in parsed.items} == set(samples.EXPECTED_TOPICS)
    assert len({t for ts in samples.EXPECTED_TOPICS.values() for t in ts}) >= 5
    assert any(not i.categories for i in parsed.items)  # some items have no category
    assert any("S&P 500" in i.title for i in parsed.items)


def test_sample_topics_cover_the_expected_tags() -> None:
    slugs = {t.slug for t in samples.sample_topics()}
    assert set().union(*samples.EXPECTED_TOPICS.values()) <= slugs
    for topic in samples.sample_topics():
        assert topic.name and topic.name_en and topic.keywords


def test_sample_feed_is_inside_the_package() -> None:
    # tests/test_wheel.py checks that the wheel holds it.
    path = samples.feed_path()
    assert path.is_file() and path.parent == ROOT / "digest" / "samples"


def test_every_sample_body_compiles_in_mjml() -> None:
    path = samples.feed_path()
    parsed = parse_document(
        path.read_bytes(), content_type=None, location=path.as_uri(), now=datetime.now(UTC)
    )
    for item in parsed.items:
        document = (
            "<mjml><mj-body><mj-section><mj-column>"
            f"<mj-text>{item.body_html}</mj-text>"
            "</mj-column></mj-section></mj-body></mjml>"
        )
        html = mjml2html(document)
        assert "<mj-" not in html
        assert html_to_text(item.body_html).split()[0] in html
