"""The rendered digest in a real browser (Debian chromium): RTL, right-aligned, no overflow."""

from __future__ import annotations

from typing import Any

import pytest

from digest.config import Settings
from tests.helpers.paths import ARTIFACTS
from tests.helpers.render_samples import article, recipient, renderer, segment

# A stand-in photo: the test never leaves the machine.
PHOTO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="400">'
    '<rect width="600" height="400" fill="#829ab1"/><circle cx="420" cy="150" r="70" '
    'fill="#f0b429"/><path d="M0 400 L220 180 L400 400 Z" fill="#486581"/></svg>'
)
# Computed direction and alignment of each article's title link and summary.
PROBE = """(urls) => urls.map((url) => {
  const link = document.querySelector(`a[href="${url}"]`);
  const summary = link.parentElement.querySelector('p');
  const styles = [link, summary].map((el) => getComputedStyle(el));
  return styles.map((s) => [s.direction, s.textAlign]);
})"""

pytestmark = pytest.mark.browser


def _open(browser: Any, html: str, width: int) -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})

    def answer(route: Any) -> None:
        if route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/svg+xml", body=PHOTO)
        else:
            route.abort()

    page.route("**/*", answer)
    page.set_content(html, wait_until="load")
    return page


def _aligned_to_start(direction: str, align: str, start: str) -> bool:
    return align == start or (
        align == "start" and direction == ("rtl" if start == "right" else "ltr")
    )


@pytest.mark.parametrize("width", [600, 375])
def test_arabic_digest_reads_right_to_left_without_overflow(
    browser: Any, settings: Settings, width: int
) -> None:
    seg = segment(
        7,
        articles=(
            *segment(6).articles,
            article(7, image_url=None, title="خبر بلا صورة عن شركة OpenAI وجامعة MIT في 2025"),
        ),
    )
    message = renderer(settings).compile_digest(seg).personalise(recipient(name="سارة"))
    page = _open(browser, message.html, width)
    try:
        for title, summary in page.evaluate(PROBE, [a.url for a in seg.articles]):
            for direction, align in (title, summary):
                assert direction == "rtl"
                assert _aligned_to_start(direction, align, "right"), align
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner
        page.screenshot(path=str(ARTIFACTS / f"digest-ar-{width}.png"), full_page=True)
    finally:
        page.close()


def test_english_digest_reads_left_to_right(browser: Any, settings: Settings) -> None:
    seg = segment(3, locale="en")
    message = renderer(settings).compile_digest(seg).personalise(recipient(name="Jane"))
    page = _open(browser, message.html, 375)
    try:
        for title, _summary in page.evaluate(PROBE, [a.url for a in seg.articles]):
            assert title[0] == "ltr" and _aligned_to_start(*title, "left")
        # The Arabic titles of an English email are RTL islands (their punctuation stays put).
        islands = page.evaluate(
            "urls => urls.map(u => getComputedStyle("
            "document.querySelector(`a[href='${u}'] > span`)).direction)",
            [a.url for a in seg.articles],
        )
        assert set(islands) == {"rtl"}
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        page.screenshot(path=str(ARTIFACTS / "digest-en-375.png"), full_page=True)
    finally:
        page.close()
