"""Feed HTML made safe: hostile markup removed, links absolute, output accepted by MJML."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mjml import mjml2html

from digest.text.sanitize import (
    _TEXT_ONLY,
    absolute_url,
    clean_html,
    first_image,
    html_to_text,
    plain_text,
    summary_of,
    truncate_words,
)

BASE = "https://news.example.org/economy/2026/11/item.html"

HOSTILE = """
<p onclick="steal()">خبر <a href="javascript:alert(1)">اضغط</a>
<a href="JaVaScRiPt:alert(2)">هنا</a> <a href="data:text/html,<script>x</script>">بيانات</a></p>
<img src="x.jpg" onerror="alert(3)"><img src="javascript:alert(4)">
<script>document.cookie</script><style>body{display:none}</style>
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object>
<svg onload="alert(5)"><circle r="1"/></svg>
<form action="https://evil.example/"><input name="q"><button>go</button></form>
<p style="position:fixed" class="x" id="y">نص <b>عريض</b> و<em>مائل</em></p>
<div><p>unclosed paragraph<p>another</div><table><tr><td>خلية</td></tr></table>
<!-- a comment --> a < b & c > d
"""


def _mjml(fragment: str) -> str:
    document = (
        '<mjml lang="ar" dir="rtl"><mj-body><mj-section><mj-column>'
        f"<mj-text>{fragment}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    return str(mjml2html(document))


def test_hostile_html_loses_scripts_handlers_and_javascript_urls() -> None:
    cleaned = clean_html(HOSTILE, BASE)
    lowered = cleaned.lower()
    for forbidden in [
        "<script",
        "javascript:",
        "onerror",
        "onclick",
        "onload",
        "<style",
        "<iframe",
        "<object",
        "<svg",
        "<form",
        "<input",
        "<button",
        "data:",
        "style=",
        "class=",
        "id=",
        "<!--",
        "document.cookie",
        "display:none",
    ]:
        assert forbidden not in lowered, forbidden
    assert "<b>عريض</b>" in cleaned and "<em>مائل</em>" in cleaned
    assert "خلية" in cleaned  # table dropped, its text kept
    assert "a &lt; b &amp; c &gt; d" in cleaned


def test_links_and_images_are_kept_and_made_absolute_against_the_item_link() -> None:
    cleaned = clean_html(
        '<p><a href="/politics/x">رابط</a> <a href="more.html">المزيد</a>'
        '<img src="../img/a.jpg" alt="صورة"> <a href="https://other.example/y">خارجي</a></p>',
        BASE,
    )
    assert 'href="https://news.example.org/politics/x"' in cleaned
    assert 'href="https://news.example.org/economy/2026/11/more.html"' in cleaned
    assert 'src="https://news.example.org/economy/2026/img/a.jpg"' in cleaned
    assert 'alt="صورة"' in cleaned
    assert 'href="https://other.example/y"' in cleaned
    assert 'rel="noopener noreferrer"' in cleaned


def test_relative_links_are_dropped_without_a_base() -> None:
    cleaned = clean_html('<a href="/x">نص</a>', None)
    assert "href" not in cleaned and "نص" in cleaned


@pytest.mark.parametrize(
    "fragment",
    [
        HOSTILE,
        "<p>غير مغلق",
        "<p>a<br>b<hr>c</p>",
        "<img src=x.jpg>",
        "نص &nbsp; &copy; خام",
        "<p>1 < 2</p>",
        "<ul><li>أ<li>ب</ul>",
        '<a href="/x?a=1&b=2">q</a>',
        "<mj-text>x</mj-text>",
        "<p dir=rtl lang=ar>مرحبا</p>",
        "<blockquote><p>اقتباس</blockquote>",
    ],
)
def test_mjml_accepts_every_sanitised_fragment(fragment: str) -> None:
    cleaned = clean_html(fragment, BASE)
    html = _mjml(cleaned)
    assert "<mj-" not in html
    text = html_to_text(fragment)
    if text:
        assert text.split()[0] in html_to_text(html)


def test_raw_unsanitised_fragments_do_break_mjml() -> None:
    # Why the sanitiser must run before MJML: the parser is strict.
    with pytest.raises(ValueError):
        _mjml("<p>غير مغلق")


def test_html_to_text_separates_blocks_and_decodes_entities() -> None:
    assert html_to_text("<p>أولًا</p><p>ثانيًا &amp; ثالثًا</p><script>x()</script>") == (
        "أولًا ثانيًا & ثالثًا"
    )
    assert html_to_text("سطر<br>سطر") == "سطر سطر"


def test_plain_text_strips_markup_only_when_there_is_some() -> None:
    assert plain_text("<b>عاجل:</b> خبر") == "عاجل: خبر"
    assert plain_text("AT&T و 5 < 6", is_html=False) == "AT&T و 5 < 6"
    assert plain_text("  سطر \n  ثانٍ ") == "سطر ثانٍ"


def test_truncate_cuts_between_words_with_an_ellipsis() -> None:
    text = " ".join(["الاقتصاد"] * 60)  # 539 characters
    cut = truncate_words(text, 280)
    assert cut.endswith("…")
    assert len(cut) <= 281
    assert all(word == "الاقتصاد" for word in cut[:-1].split())  # no half word
    assert truncate_words("قصير", 280) == "قصير"


def test_truncate_never_splits_a_word_even_at_the_limit() -> None:
    text = "كلمة " * 55 + "طويلةجدا" + " بعدها"
    cut = truncate_words(text, 280)
    assert "طويلة" not in cut
    assert cut.endswith("كلمة…")


def test_truncate_drops_trailing_punctuation_before_the_ellipsis() -> None:
    assert truncate_words("أولًا، ثانيًا، ثالثًا", 14) == "أولًا، ثانيًا…"


def test_first_image_of_sanitised_html() -> None:
    cleaned = clean_html('<p>نص</p><img src="/a.jpg"><img src="/b.jpg">', BASE)
    assert first_image(cleaned) == "https://news.example.org/a.jpg"
    assert first_image("<p>بلا صور</p>") is None


def test_absolute_url() -> None:
    assert absolute_url("/x", BASE) == "https://news.example.org/x"
    assert absolute_url("javascript:alert(1)", BASE) is None
    assert absolute_url("", BASE) is None
    assert absolute_url("mailto:a@b.c", None) is None


def test_images_left_without_a_source_are_dropped() -> None:
    cleaned = clean_html(
        '<p>أ<img src="javascript:x()" alt="a">ب<img alt="b"><img src="/c.jpg"></p>', None
    )
    assert cleaned == "<p>أب</p>"
    kept = clean_html('<img alt="صورة" src="/c.jpg">', BASE)
    assert kept == '<img alt="صورة" src="https://news.example.org/c.jpg">'


# The reference implementations the faster ones must match exactly.
_OLD_BLOCK = re.compile(r"<(?:br|/?p|/?div|/?li|/?h[1-6]|/?tr|/?td|/?th|/?blockquote|hr)\b", re.I)
_OLD_SPACES = re.compile(r"\s+")
_PIECES = ["<p>", "</p>", "<br>", "<BR/>", "<li>", "<h2>", "</H3>", "<hr>", "<pre>", "<b>", "<"]
_PIECES += [">", "&amp;", "&nbsp;", "&#1575;", "نص", "a", " ", "\n", "\t", "\u00a0", "\u2028"]
_HTMLISH = st.lists(st.sampled_from([*_PIECES, "\x0b"]), max_size=40).map("".join)


@given(_HTMLISH)
@settings(max_examples=300, deadline=None)
def test_text_helpers_match_their_reference_implementations(fragment: str) -> None:
    spaced = _OLD_BLOCK.sub(r" \g<0>", fragment)
    expected = _OLD_SPACES.sub(" ", html.unescape(_TEXT_ONLY.clean(spaced))).strip()
    assert html_to_text(fragment) == expected
    assert plain_text(fragment, is_html=False) == _OLD_SPACES.sub(" ", fragment).strip()


_BODY_PIECES = [
    *_PIECES,
    "<p>",
    "</p>",
    "<a href='/x'>",
    "</a>",
    "<em>",
    "</em>",
    "<table><tr><td>",
    "</td></tr></table>",
    "<!-- تعليق -->",
    "&CounterClockwiseContourIntegral;",
    "&lt;",
    "&#x627;",
    "كلمة ",
    "اقتصاد ",
    "2,000 ",
    "https://news.example.org/" + "a" * 300,
    "word",
]
_LONG_HTML = st.lists(st.sampled_from(_BODY_PIECES), min_size=200, max_size=3000).map("".join)


@given(_LONG_HTML, st.integers(min_value=5, max_value=300))
@settings(max_examples=150, deadline=None)
def test_summary_of_a_long_body_is_the_summary_of_its_whole_text(fragment: str, limit: int) -> None:
    clean = clean_html(fragment, BASE)
    assert summary_of(clean, limit) == truncate_words(html_to_text(clean), limit)


def test_summary_of_reads_a_long_body_only_as_far_as_needed() -> None:
    paragraph = "<p>" + "نص عربي طويل " * 40 + "</p>"
    body = paragraph * 2000  # ~1 MB of HTML
    assert summary_of(body, 280) == truncate_words(html_to_text(body), 280)
    assert len(summary_of(body, 280)) <= 281


@pytest.mark.parametrize("shift", range(-30, -4))
def test_summary_of_a_body_whose_first_prefix_cuts_an_entity(shift: int) -> None:
    # Markup-heavy: the first prefix read has little text, and it ends inside "&amp;" or
    # "&nbsp;" at some shift; the summary must still be that of the whole text.
    link = '<a href="https://news.example.org/' + "q" * (1950 + shift) + '">ر</a>'
    body = clean_html(f"<p>{'كلمة ' * 8}{link} &amp; &nbsp;ب {'كلمة ' * 400}</p>", BASE)
    whole = html_to_text(body)
    for limit in range(40, 60):
        assert summary_of(body, limit) == truncate_words(whole, limit), limit
