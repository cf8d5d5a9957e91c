"""Rendering: RTL structure, escaping, size budget, plain text, personalisation, bad templates."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from digest.config import Settings, load_settings
from digest.errors import ConfigError, InvalidInput, TemplateError
from digest.render import data as render_data
from digest.render.i18n import TEMPLATES
from digest.render.renderer import Renderer
from tests.helpers.paths import ROOT
from tests.helpers.render_samples import (
    BASE,
    DAY,
    SITE,
    TOPICS,
    article,
    options,
    parse,
    recipient,
    renderer,
    segment,
)

ARABIC_START = re.compile(r"^[\u200f\u0620-\u064a]")
URL = re.compile(r"https?://\S+")


@pytest.fixture
def engine_renderer(settings: Settings) -> Renderer:
    return renderer(settings)


def test_html_is_arabic_rtl_at_the_root_and_in_the_wrapper(engine_renderer: Renderer) -> None:
    message = engine_renderer.compile_digest(segment()).personalise(recipient())
    parsed = parse(message.html)
    (html,) = parsed.all("html")
    assert (html.attrs["lang"], html.attrs["dir"]) == ("ar", "rtl")
    wrappers = [d for d in parsed.all("div") if d.attrs.get("role") == "article"]
    assert len(wrappers) == 1
    assert (wrappers[0].attrs["lang"], wrappers[0].attrs["dir"]) == ("ar", "rtl")
    assert message.locale == "ar"


def test_every_article_title_and_link_appears_once(engine_renderer: Renderer) -> None:
    seg = segment(9)
    message = engine_renderer.compile_digest(seg).personalise(recipient())
    links = parse(message.html).all("a")
    for item in seg.articles:
        assert [a.attrs["href"] for a in links].count(item.url) == 1
        assert [a.text for a in links].count(item.title) == 1
    assert message.article_ids == tuple(a.id for a in seg.articles)


def test_sections_follow_the_subscribers_topic_order(engine_renderer: Renderer) -> None:
    def headings(order: tuple[int, ...]) -> list[int]:
        seg = segment(6, topics=tuple(TOPICS[i] for i in order))
        text = parse(engine_renderer.compile_digest(seg).personalise(recipient()).html)
        visible = text.visible_text
        return sorted(range(3), key=lambda i: visible.index(TOPICS[i].name))

    assert headings((0, 1, 2)) == [0, 1, 2]
    assert headings((2, 0, 1)) == [2, 0, 1]


def test_no_template_syntax_markers_scripts_or_plain_http(engine_renderer: Renderer) -> None:
    message = engine_renderer.compile_digest(segment(tracking=True)).personalise(recipient())
    parsed = parse(message.html)
    for part in (message.html, message.text):
        assert "{{" not in part and "{%" not in part and "@@" not in part
    assert not parsed.all("script")
    assert not any(k.startswith("on") for e in parsed.elements for k in e.attrs)
    urls = [a.attrs["href"] for a in parsed.all("a")] + [i.attrs["src"] for i in parsed.all("img")]
    assert urls and all(u.startswith("https://") for u in urls)
    assert "fonts.googleapis" not in message.html


def test_rtl_defaults_font_stack_and_outlook_ghost_tables(engine_renderer: Renderer) -> None:
    html = engine_renderer.compile_digest(segment()).personalise(recipient()).html
    parsed = parse(html)
    text_styles = [
        d.attrs["style"] for d in parsed.all("div") if "font-family" in d.attrs.get("style", "")
    ]
    assert text_styles
    for style in text_styles:
        assert "text-align:right" in style
        assert "Tahoma" in style and "Segoe UI" in style and "Geeza Pro" in style
        height = re.search(r"line-height:([\d.]+)(px|%)?", style)
        assert height and not height.group(2) and float(height.group(1)) >= 1.6, style
    ghosts = [c for c in parsed.comments if c.startswith("[if mso | IE]><table")]
    assert ghosts and all(re.findall(r"<table dir=\"rtl\"", c) for c in ghosts)
    assert not any("<table " in c and 'dir="rtl"' not in c for c in ghosts)
    assert any(c.startswith("[if mso]><style") and "Tahoma" in c for c in parsed.comments)


def test_preheader_starts_rtl_and_holds_the_count(engine_renderer: Renderer) -> None:
    compiled = engine_renderer.compile_digest(segment(3))
    assert ARABIC_START.match(compiled.preheader)
    assert "٣ مقالات" in compiled.preheader
    html = compiled.personalise(recipient()).html
    hidden = html.index('<div style="display:none;')
    assert html.index(compiled.preheader[1:40], hidden) < html.index('role="article"')


def test_header_shows_publisher_hijri_and_gregorian_dates(engine_renderer: Renderer) -> None:
    text = parse(engine_renderer.compile_digest(segment(2)).personalise(recipient()).html)
    visible = text.visible_text
    assert "أخبار المثال" in visible
    assert "السبت، ١ مارس ٢٠٢٥" in visible
    assert "١ رمضان ١٤٤٦\u00a0هـ" in visible
    assert "في نشرة اليوم: مقالان" in visible


def test_sixty_articles_fit_under_100_kb_with_a_more_line(engine_renderer: Renderer) -> None:
    seg = segment(60)
    compiled = engine_renderer.compile_digest(seg)
    message = compiled.personalise(recipient())
    assert len(message.html.encode()) < 100_000
    kept = len(message.article_ids)
    assert 5 < kept < 60
    assert message.article_ids == tuple(range(1, kept + 1))  # the lowest-ranked are dropped
    assert compiled.dropped_ids == tuple(range(kept + 1, 61))
    dropped = 60 - kept
    more = [a for a in parse(message.html).all("a") if a.attrs["href"] == SITE]
    assert len(more) == 1
    expected = f"{dropped} مقالًا آخر" if 11 <= dropped % 100 <= 99 else f"{dropped} مقالات أخرى"
    assert expected.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")) in more[0].text
    assert SITE in message.text.splitlines()


def test_size_budget_is_a_setting(settings: Settings) -> None:
    small = renderer(settings, max_html_bytes=40_000).compile_digest(segment(20))
    assert small.html_bytes <= 40_000 and small.dropped_ids
    assert len(small.personalise(recipient()).html.encode()) <= 40_000


def test_text_part_starts_rtl_and_puts_each_url_on_its_own_line(
    engine_renderer: Renderer,
) -> None:
    seg = segment(5)
    text = engine_renderer.compile_digest(seg).personalise(recipient()).text
    assert ARABIC_START.match(text)
    lines = text.splitlines()
    for line in lines:
        for url in URL.findall(line):
            assert line.strip() == url
    for item in seg.articles:
        assert lines.count(item.url) == 1
        assert item.title in text
    assert f"{BASE}/u/u-tok" in lines and f"{BASE}/p/p-tok" in lines and f"{BASE}/v/v-tok" in lines
    paragraphs = [
        line for line in lines if line.strip() and not URL.match(line) and "=" not in line
    ]
    assert [line for line in paragraphs if not ARABIC_START.match(line)] == ["--"]


def test_hostile_feed_text_comes_out_as_text(engine_renderer: Renderer) -> None:
    hostile = '<img src=x onerror="alert(1)"> {{ 7*7 }} {% raw %}'
    seg = segment(1, articles=(article(1, title=hostile, summary=hostile + " <script>x</script>"),))
    message = engine_renderer.compile_digest(seg).personalise(recipient(name="<b>Eve</b>"))
    parsed = parse(message.html)
    assert not any("onerror" in e.attrs for e in parsed.elements)
    assert not parsed.all("script") and not parsed.all("b")
    assert all(i.attrs["src"] != "x" for i in parsed.all("img"))
    assert hostile in parsed.visible_text
    assert "49" not in parsed.visible_text
    assert "<b>Eve</b>" in parsed.visible_text.replace("\u200f", "")  # RLMs follow Latin runs
    assert hostile in message.text and "<b>Eve</b>" in message.text


def test_personalise_substitutes_tokens_and_escapes_the_name(engine_renderer: Renderer) -> None:
    compiled = engine_renderer.compile_digest(segment(3, tracking=True))
    one = compiled.personalise(recipient(name="John & Jane", token="one"))
    two = compiled.personalise(recipient(name="", token="two/..?x"))
    assert 'مرحبًا <span dir="ltr">John &amp; Jane</span>' in one.html
    assert "مرحبًا John & Jane،" in one.text
    assert "مرحبًا،" in two.html
    links = [a.attrs["href"] for a in parse(one.html).all("a")]
    assert f"{BASE}/u/u-one" in links and f"{BASE}/p/p-one" in links
    assert one.unsubscribe_url == f"{BASE}/u/u-one"
    assert two.unsubscribe_url == f"{BASE}/u/u-two%2F..%3Fx"
    assert "u-one" not in two.html


def test_tracking_rewrites_article_links_and_adds_the_pixel(engine_renderer: Renderer) -> None:
    seen: list[str] = []

    def suffix(url: str) -> str:
        seen.append(url)
        return f"~{url.rsplit('/', 1)[1]}"

    seg = segment(3, tracking=True)
    compiled = engine_renderer.compile_digest(seg, link_suffix=suffix)
    message = compiled.personalise(recipient(token="abc"))
    parsed = parse(message.html)
    hrefs = [a.attrs["href"] for a in parsed.all("a")]
    for item in seg.articles:
        assert item.url not in hrefs
        assert hrefs.count(f"{BASE}/c/c-abc~{item.id}") == 1
        assert compiled.links[f"~{item.id}"] == item.url
    assert f"{BASE}/u/u-abc" in hrefs  # footer links are never click-tracked
    pixels = [i for i in parsed.all("img") if i.attrs["src"] == f"{BASE}/o/o-abc.gif"]
    assert len(pixels) == 1 and pixels[0].attrs["width"] == "1"
    assert f"{BASE}/c/c-abc~1" in message.text.splitlines()
    assert seen


def test_tracking_off_means_direct_links_and_no_pixel(engine_renderer: Renderer) -> None:
    message = engine_renderer.compile_digest(segment(3)).personalise(recipient())
    assert "/o/" not in message.html and "/c/" not in message.html
    assert "/c/" not in message.text


def test_subject_comes_from_the_settings_template(settings: Settings) -> None:
    compiled = renderer(
        settings, subject="{publisher}: {count} — {top_title} {{x}}"
    ).compile_digest(segment(3))
    assert (
        compiled.subject == "أخبار المثال: ٣ — ارتفاع مؤشر S&P 500 بنسبة 1.5% في الجلسة رقم 1 {x}"
    )


def test_subject_template_cannot_reach_attributes(tmp_path: Path) -> None:
    for bad in ("{top_title.__class__}", "{top_title[0]}", "{0}", "{nope}", "a } b"):
        path = tmp_path / "settings.toml"
        path.write_text(f'[render]\nsubject = "{bad}"\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"render\.subject"):
            load_settings(path)


def test_english_subscriber_gets_an_ltr_english_email(engine_renderer: Renderer) -> None:
    compiled = engine_renderer.compile_digest(segment(3, locale="en"))
    message = compiled.personalise(recipient(name="Jane"))
    parsed = parse(message.html)
    (html,) = parsed.all("html")
    assert (html.attrs["lang"], html.attrs["dir"]) == ("en", "ltr")
    assert "In today's digest: 3 articles" in parsed.visible_text
    assert "Hello Jane," in parsed.visible_text and "Economy" in parsed.visible_text
    assert "Saturday, March 1, 2025 · 1 Ramadan 1446\u00a0AH" in parsed.visible_text
    assert "direction:rtl" not in message.html and "text-align:right" not in message.html
    assert '<table dir="rtl"' not in message.html
    assert compiled.subject.startswith("Your daily digest: ")
    assert message.text.startswith("Example News")


def test_latin_digits_setting(settings: Settings) -> None:
    compiled = renderer(settings, digits="latin").compile_digest(segment(3))
    assert "في نشرة اليوم: 3 مقالات" in compiled.preheader
    assert "١" not in compiled.personalise(recipient()).html


def test_weekly_cadence_changes_the_intro(engine_renderer: Renderer) -> None:
    compiled = engine_renderer.compile_digest(segment(11, cadence="weekly"))
    assert compiled.preheader.startswith("في نشرة هذا الأسبوع: ١١ مقالًا")


def test_unknown_locale_and_topicless_article_are_clear_errors(engine_renderer: Renderer) -> None:
    with pytest.raises(InvalidInput, match="unknown locale 'fr'"):
        engine_renderer.compile_digest(segment(locale="fr"))
    with pytest.raises(InvalidInput, match="article 9 has topics"):
        engine_renderer.compile_digest(segment(1, articles=(article(9, topic="weather"),)))


def test_unsafe_urls_and_control_characters(engine_renderer: Renderer) -> None:
    seg = segment(
        3,
        articles=(
            article(1, url="javascript:alert(1)"),
            article(2, title="عنوان\x0b فيه\x00 محارف تحكم", image_url="data:image/png;base64,xx"),
            article(3, title="   "),
        ),
    )
    compiled = engine_renderer.compile_digest(seg)
    assert compiled.article_ids == (2,)
    assert [s.article_id for s in compiled.skipped] == [1, 3]
    html = compiled.personalise(recipient()).html
    assert "عنوان فيه محارف تحكم" in html and "data:image" not in html


def test_article_the_mjml_parser_rejects_is_skipped_not_fatal(
    engine_renderer: Renderer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the control-character cleanup, MRML refuses a vertical tab: only that card goes.
    monkeypatch.setattr(render_data, "clean_text", lambda text, limit: text)
    seg = segment(3, articles=(article(1), article(2, title="خبر\x0bمعطوب"), article(3)))
    with caplog.at_level(logging.WARNING, logger="digest.render.renderer"):
        compiled = engine_renderer.compile_digest(seg)
    assert compiled.article_ids == (1, 3)
    assert compiled.skipped[0].article_id == 2
    assert "MJML parser rejects it" in compiled.skipped[0].reason
    assert "article 2 skipped" in caplog.text


def _templates_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    return copy


def test_missing_variable_fails_at_compile_with_file_and_line(
    settings: Settings, tmp_path: Path
) -> None:
    templates = _templates_copy(tmp_path)
    card = templates / "email/partials/article.mjml.j2"
    lines = card.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "{{ card.no_such_field }}")
    card.write_text("\n".join(lines), encoding="utf-8")
    broken = renderer(settings, templates_dir=templates)
    with pytest.raises(TemplateError, match=r"email/partials/article\.mjml\.j2:3") as caught:
        broken.compile_digest(segment(2))
    assert "no_such_field" in str(caught.value)


def test_bad_mjml_fails_at_compile_naming_the_template(settings: Settings, tmp_path: Path) -> None:
    templates = _templates_copy(tmp_path)
    digest = templates / "email/digest.mjml.j2"
    digest.write_text(
        digest.read_text(encoding="utf-8").replace(
            '<mj-section padding="0 0 12px">', "<mj-section padding=0><mj-text bad=x>"
        ),
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=r"email/digest\.mjml\.j2:\d+: MJML does not compile"):
        renderer(settings, templates_dir=templates).compile_digest(segment(2))


def test_broken_card_is_a_template_error_not_a_reason_to_drop_articles(
    settings: Settings, tmp_path: Path
) -> None:
    templates = _templates_copy(tmp_path)
    card = templates / "email/partials/article.mjml.j2"
    text = card.read_text(encoding="utf-8")
    card.write_text(text.replace('<p style="margin:6px 0 4px;">', "<p><p>", 1), encoding="utf-8")
    with pytest.raises(
        TemplateError, match=r"email/partials/article\.mjml\.j2:\d+: .*<p> is never"
    ):
        renderer(settings, templates_dir=templates).compile_digest(segment(2))


def test_syntax_error_fails_when_the_renderer_starts(settings: Settings, tmp_path: Path) -> None:
    templates = _templates_copy(tmp_path)
    (templates / "email/welcome.txt.j2").write_text("{% if %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"email/welcome\.txt\.j2:1"):
        renderer(settings, templates_dir=templates)


def test_confirmation_email(engine_renderer: Renderer) -> None:
    compiled = engine_renderer.compile_confirmation(
        list_name="النشرة اليومية", locale="ar", day=DAY
    )
    message = compiled.personalise(recipient(token="z"))
    assert compiled.subject == "أكِّد اشتراكك في النشرة اليومية"
    hrefs = [a.attrs["href"] for a in parse(message.html).all("a")]
    assert f"{BASE}/confirm/k-z" in hrefs
    assert f"{BASE}/confirm/k-z" in message.text.splitlines()
    assert ARABIC_START.match(message.text) and ARABIC_START.match(compiled.preheader)
    assert "/u/" not in message.html  # nothing to unsubscribe from yet


def test_welcome_email(engine_renderer: Renderer) -> None:
    compiled = engine_renderer.compile_welcome(
        list_name="النشرة اليومية", locale="ar", day=DAY, topics=TOPICS[:2]
    )
    message = compiled.personalise(recipient(token="w"))
    parsed = parse(message.html)
    hrefs = [a.attrs["href"] for a in parsed.all("a")]
    assert f"{BASE}/p/p-w" in hrefs and f"{BASE}/u/u-w" in hrefs
    assert "موضوعاتك: اقتصاد، تقنية" in parsed.visible_text
    assert compiled.subject == "أهلًا بك في النشرة اليومية"
    english = engine_renderer.compile_welcome(
        list_name="Daily", locale="en", day=DAY, topics=TOPICS[:2]
    )
    assert "Your topics: Economy, Technology" in english.personalise(recipient()).text


def test_options_from_the_shipped_settings() -> None:
    settings = load_settings(ROOT / "settings.toml")
    built = options(settings)
    assert built.brand.postal_address.startswith("ص.ب.")  # [brand] of settings.toml
    assert built.digits == "arabic" and built.max_html_bytes == 100_000
