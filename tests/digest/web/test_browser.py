"""The unsubscribe and preferences pages in a real browser (Debian chromium) at 375 px."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.tracking.tokens import Purpose, Signer
from subscribers.people import describe
from tests.helpers.paths import ARTIFACTS
from tests.helpers.web import LiveServer, free_socket, reader, start_live, with_base_url
from tests.helpers.world import World

# Direction of the page and of its heading, and whether anything sticks out sideways.
LAYOUT = """() => ({
  dir: document.documentElement.dir,
  heading: getComputedStyle(document.querySelector('h1')).direction,
  align: getComputedStyle(document.querySelector('h1')).textAlign,
  overflow: document.documentElement.scrollWidth > window.innerWidth,
  narrowButtons: [...document.querySelectorAll('button')].filter(
      (b) => b.getBoundingClientRect().right > window.innerWidth ||
             b.getBoundingClientRect().height < 44).length,
})"""

pytestmark = pytest.mark.browser


@pytest.fixture
def live(engine: Engine, web_settings: Settings) -> Iterator[LiveServer]:
    sock = free_socket()
    settings = with_base_url(web_settings, f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = start_live(settings, engine, sock=sock)
    yield server
    server.stop()


def _page(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(url)
    return page


def _check_layout(page: Any, direction: str = "rtl") -> None:
    layout = page.evaluate(LAYOUT)
    assert layout["dir"] == direction and layout["heading"] == direction
    assert layout["align"] in ("start", "right" if direction == "rtl" else "left")
    assert not layout["overflow"], "the page is wider than a 375 px phone"
    assert layout["narrowButtons"] == 0, "buttons must fit and be at least 44 px tall"


def _status(session: Session, email: str) -> str:
    session.expire_all()
    (daily,) = describe(session, email)["subscriptions"]
    return str(daily["status"])


def test_unsubscribe_page_reads_right_to_left_and_its_button_works(
    browser: Any, live: LiveServer, session: Session, world: World, web_settings: Settings
) -> None:
    sid = reader(session, world, "reem@example.org", ["politics"])
    token = Signer(web_settings.web.secret_key).dumps(Purpose.UNSUBSCRIBE, sid, world.daily.id or 0)
    page = _page(browser, f"{live.url}/u/{token}")
    try:
        _check_layout(page)
        page.screenshot(path=str(ARTIFACTS / "web-unsubscribe-ar-375.png"), full_page=True)
        assert _status(session, "reem@example.org") == "active"  # opening it changed nothing
        page.click("#unsubscribe")
        page.wait_for_load_state()
        assert "أُلغي اشتراكك" in page.inner_text("h1")
        _check_layout(page)
        page.screenshot(path=str(ARTIFACTS / "web-unsubscribed-ar-375.png"), full_page=True)
    finally:
        page.close()
    assert _status(session, "reem@example.org") == "unsubscribed"


def test_preferences_page_saves_and_its_leave_buttons_work(
    browser: Any, live: LiveServer, session: Session, world: World, web_settings: Settings
) -> None:
    sid = reader(session, world, "reem@example.org", ["politics"])
    token = Signer(web_settings.web.secret_key).dumps(Purpose.PREFERENCES, sid, world.daily.id or 0)
    page = _page(browser, f"{live.url}/p/{token}")
    try:
        _check_layout(page)
        page.screenshot(path=str(ARTIFACTS / "web-preferences-ar-375.png"), full_page=True)
        page.check(f"input[name=topic][value='{world.topic_id('sports')}']")
        page.uncheck(f"input[name=topic][value='{world.topic_id('politics')}']")
        page.select_option("#hour", "6")
        page.select_option("#timezone", "Asia/Dubai")
        page.click("#save")
        page.wait_for_load_state()
        assert page.inner_text(".notice") == "حُفظت اختياراتك."
        _check_layout(page)
        session.expire_all()
        person = describe(session, "reem@example.org")
        assert person["timezone"] == "Asia/Dubai"
        assert person["subscriptions"][0]["topics"] == ["sports"]
        assert person["subscriptions"][0]["hour"] == 6
        # English, then leave every list from the same page.
        page.check("input[name=locale][value=en]")
        page.click("#save")
        page.wait_for_load_state()
        _check_layout(page, "ltr")
        page.screenshot(path=str(ARTIFACTS / "web-preferences-en-375.png"), full_page=True)
        page.click("#unsubscribe-all")
        page.wait_for_load_state()
        assert "all our newsletters" in page.inner_text("h1")
    finally:
        page.close()
    assert _status(session, "reem@example.org") == "unsubscribed"
