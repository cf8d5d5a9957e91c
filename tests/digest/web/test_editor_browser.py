"""The editor preview in a real browser (Debian chromium): log in, open an edition, see a
segment's email at two widths, pin an article and see it lead, send a test to the sink."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.editions.editors import add_editor
from digest.send.smtp import SmtpSender
from tests.helpers.paths import ARTIFACTS
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.web import (
    SENT_AT,
    LiveServer,
    add_news,
    free_socket,
    html_of,
    parse,
    reader,
    send_digests,
    start_live,
    with_base_url,
)
from tests.helpers.world import World, add_article

EDITOR, PASSWORD = "editor@news.example.org", "a long enough password"
OLD_STORY = "قانون الانتخاب الجديد يصدر رسميًا"
NEWS = "انتخابات بلدية في الرياض"
# Titles of the articles as the email shows them, in order (cards are links of 18 px).
TITLES = """() => [...document.querySelectorAll('a[style*="font-size:18px"]')]
  .map(a => a.innerText)"""
LAYOUT = """() => ({
  dir: document.documentElement.dir,
  heading: getComputedStyle(document.querySelector('h1')).direction,
  overflow: document.documentElement.scrollWidth > window.innerWidth,
})"""

pytestmark = pytest.mark.browser


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def live(engine: Engine, web_settings: Settings, sink: SmtpSink) -> Iterator[LiveServer]:
    sock = free_socket()
    settings = with_base_url(web_settings, f"http://127.0.0.1:{sock.getsockname()[1]}")
    # The newsroom's day is the readers' (UTC): from 21:00 UTC on, Riyadh's "today" would
    # be the readers' tomorrow, and the edition edited would not be the one sent.
    day = settings.digest.model_copy(update={"timezone": "UTC"})
    settings = settings.model_copy(update={"digest": day})
    smtp = settings.smtp.model_copy(update={"port": sink.port})
    server = start_live(settings, engine, sock=sock, sender_factory=lambda: SmtpSender(smtp))
    yield server
    server.stop()


@pytest.fixture
def newsroom(session: Session, world: World) -> int:
    """Readers with three topic mixes, the day's news and an older story; an editor."""
    reader(session, world, "reem@example.org", ["politics"], name="ريم")
    reader(session, world, "omar@example.org", ["economy", "politics"])
    reader(session, world, "sara@example.org", ["sports"], locale="en", name="Sara")
    add_news(session, world)
    old = add_article(session, world, OLD_STORY, ["politics"], SENT_AT - timedelta(hours=9))
    add_editor(session, EDITOR, PASSWORD)
    session.commit()
    return old


def _frame_titles(page: Any, frame: str) -> list[str]:
    titles: list[str] = page.frame_locator(frame).locator("body").evaluate(TITLES)
    return titles


def test_editor_previews_pins_sends_a_test_and_approves(
    browser: Any,
    live: LiveServer,
    sink: SmtpSink,
    newsroom: int,
    engine: Engine,
    world: World,
    web_settings: Settings,
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        page.goto(f"{live.url}/editor")
        assert page.url.endswith("/editor/login")  # behind a login
        layout = page.evaluate(LAYOUT)
        assert (layout["dir"], layout["heading"]) == ("rtl", "rtl")
        page.fill("#email", EDITOR)
        page.fill("#password", PASSWORD)
        page.click("#log-in")
        page.wait_for_load_state()
        assert page.inner_text("h1") == "أعداد اليوم والغد"
        page.screenshot(path=str(ARTIFACTS / "editor-home-ar.png"), full_page=True)
        page.click("#editions a[data-edition] >> nth=0")  # today's edition
        page.wait_for_load_state()
        assert page.evaluate(LAYOUT)["dir"] == "rtl"
        segments = page.locator("#segments a[data-segment]")
        assert segments.count() == 3  # politics, economy+politics, sports (English)
        # The segment of politics-only readers: its email, at desktop and phone widths.
        page.locator("#segments tr", has_text="سياسة").filter(has_not_text="اقتصاد").locator(
            "a[data-segment]"
        ).click()
        page.wait_for_load_state()
        assert _frame_titles(page, "#frame-desktop") == ["انتخابات بلدية في الرياض", OLD_STORY]
        assert _frame_titles(page, "#frame-phone") == ["انتخابات بلدية في الرياض", OLD_STORY]
        widths = page.evaluate(
            "() => ['#frame-desktop', '#frame-phone'].map("
            "s => document.querySelector(s).getBoundingClientRect().width)"
        )
        assert widths[0] > 600 and widths[1] == 377  # 375 px inside its border
        assert "KB" not in page.inner_text("#preview-size")  # Arabic words and digits
        assert "ك.ب من ١٠٠ ك.ب" in page.inner_text("#preview-size")
        assert "انتخابات بلدية في الرياض" in page.inner_text("#preview-subject")
        assert "انتخابات بلدية في الرياض" in page.inner_text("#preview-text")
        page.screenshot(path=str(ARTIFACTS / "editor-edition-ar.png"), full_page=True)
        # Pin the older story: it moves to the top, under "top stories".
        page.click(f"#window button[data-action=pin][data-article='{newsroom}']")
        page.wait_for_load_state()
        assert page.inner_text(".notice") == "حُفظ التغيير."
        assert _frame_titles(page, "#frame-desktop") == [OLD_STORY, "انتخابات بلدية في الرياض"]
        assert OLD_STORY in page.inner_text("#preview-subject")
        frame_text = page.frame_locator("#frame-phone").locator("body").inner_text()
        assert frame_text.index("أبرز الأخبار") < frame_text.index(OLD_STORY)
        assert EDITOR in page.inner_text("#history")
        assert "تثبيت في الصدارة" in page.inner_text("#history")
        page.screenshot(path=str(ARTIFACTS / "editor-edition-pinned-ar.png"), full_page=True)
        # Send me a test: through the real SMTP settings, to the editor's address.
        page.click("#send-test")
        page.wait_for_load_state()
        assert page.inner_text(".notice") == "أُرسلت نسخة تجريبية إلى عنوانك."
        assert sink.recipients() == [EDITOR]
        message = parse(sink.messages[0].data)
        assert str(message["Subject"]).startswith("[test] ")
        html = html_of(message)
        assert html.index(OLD_STORY) < html.index("انتخابات بلدية في الرياض")
        # A note, a new subject, then approval; the digests sent are what the editor saw.
        page.fill("#note", "تغطية خاصة للانتخابات البلدية مع مؤشر S&P 500 اليوم.")
        page.click("#save-note")
        page.wait_for_load_state()
        frame_text = page.frame_locator("#frame-desktop").locator("body").inner_text()
        assert frame_text.index("كلمة المحرر") < frame_text.index("مؤشر S&P 500")
        page.fill("#subject", "عاجل: {top_title}")
        page.click("#save-subject")
        page.wait_for_load_state()
        seen_subject = page.inner_text("#preview-subject")
        assert seen_subject == f"عاجل: {OLD_STORY}"
        seen_titles = _frame_titles(page, "#frame-desktop")
        page.click("#approve")
        page.wait_for_load_state()
        assert page.inner_text("#status") == "معتمد"
        page.screenshot(path=str(ARTIFACTS / "editor-edition-approved-ar.png"))
        with ThreadPoolExecutor(1) as pool:  # playwright's sync API holds this thread's loop
            sent = pool.submit(
                send_digests, engine, world, web_settings, now=datetime.now(UTC)
            ).result()
        assert sorted(sent) == ["omar@example.org", "reem@example.org", "sara@example.org"]
        assert str(sent["reem@example.org"]["Subject"]) == seen_subject
        body = html_of(sent["reem@example.org"])
        assert 'مؤشر <span dir="ltr">S&amp;P 500</span> اليوم.' in body
        assert sorted(seen_titles, key=body.index) == seen_titles == [OLD_STORY, NEWS]
        assert str(sent["omar@example.org"]["Subject"]) == seen_subject  # the lead for all
        # A reader by address: the English reader's email.
        page.fill("#reader-email", "sara@example.org")
        page.click("#reader button")
        page.wait_for_load_state()
        assert _frame_titles(page, "#frame-desktop") == ["نهائي كأس الخليج"]  # as sent
        assert "Your daily digest" in page.inner_text("#preview-subject")
        page.set_viewport_size({"width": 820, "height": 1000})
        assert not page.evaluate(LAYOUT)["overflow"], "the page is wider than a tablet"
        page.locator("#frame-desktop").scroll_into_view_if_needed()  # iframes paint on screen
        page.screenshot(path=str(ARTIFACTS / "editor-reader-ar-820.png"))
    finally:
        page.close()


def test_wrong_password_gets_a_generic_error(browser: Any, live: LiveServer, newsroom: int) -> None:
    page = browser.new_page(viewport={"width": 400, "height": 800})
    try:
        page.goto(f"{live.url}/editor/login")
        page.fill("#email", EDITOR)
        page.fill("#password", "not the password")
        page.click("#log-in")
        page.wait_for_load_state()
        assert page.inner_text(".error") == "البريد الإلكتروني أو كلمة المرور غير صحيحة."
        assert page.url.endswith("/editor/login")
        page.screenshot(path=str(ARTIFACTS / "editor-login-error-ar.png"), full_page=True)
    finally:
        page.close()
