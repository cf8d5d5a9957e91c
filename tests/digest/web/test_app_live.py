"""Against a real uvicorn on loopback, with the links of a really sent digest."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from subscribers.people import describe
from tests.helpers.cli import Cli
from tests.helpers.web import (
    add_news,
    free_socket,
    html_of,
    links,
    one_click_url,
    reader,
    send_digests,
    start_live,
    with_base_url,
)
from tests.helpers.world import World

SCANNER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 BingPreview/1.0b"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0"


def _status(session: Session, email: str) -> str:
    session.expire_all()
    (daily,) = describe(session, email)["subscriptions"]
    return str(daily["status"])


def test_a_sent_digest_against_the_live_app(
    engine: Engine, session: Session, world: World, web_settings: Settings, cli: Cli
) -> None:
    # Done when: the List-Unsubscribe header of a real sent digest works with a one-click
    # POST, a link scanner's GET does nothing, and `digest stats` shows human and machine
    # opens apart.
    for name in ("reem", "omar", "sara"):
        reader(session, world, f"{name}@example.org", ["politics", "economy"])
    add_news(session, world)
    sock = free_socket()
    settings = with_base_url(web_settings, f"http://127.0.0.1:{sock.getsockname()[1]}")
    messages = send_digests(engine, world, settings)
    live = start_live(settings, engine, sock=sock)
    try:
        with httpx.Client(headers={"User-Agent": SCANNER}, follow_redirects=False) as scanner:
            # A security gateway follows every link of every message, many times over.
            for message in messages.values():
                html = html_of(message)
                every = [one_click_url(message), *links(html, "p"), *links(html, "v")]
                every += links(html, "c") + links(html, "o")
                for _ in range(5):
                    for url in every:
                        assert scanner.get(url).status_code in (200, 302)
        for name in ("reem", "omar", "sara"):
            assert _status(session, f"{name}@example.org") == "active"
        # Gmail's one-click POST, byte for byte (RFC 8058 §3.2): no cookie, no redirect.
        reem = messages["reem@example.org"]
        response = httpx.post(
            one_click_url(reem),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200 and not response.is_redirect
        assert _status(session, "reem@example.org") == "unsubscribed"
        # The same as multipart/form-data (another provider), and a repeat.
        omar = messages["omar@example.org"]
        for _ in range(2):
            response = httpx.post(
                one_click_url(omar), files={"List-Unsubscribe": (None, b"One-Click")}
            )
            assert response.status_code == 200
        assert _status(session, "omar@example.org") == "unsubscribed"
        assert _status(session, "sara@example.org") == "active"
        # Sara reads: her mail client loads the pixel, she clicks the first article.
        sara = html_of(messages["sara@example.org"])
        with httpx.Client(headers={"User-Agent": THUNDERBIRD}) as person:
            assert person.get(links(sara, "o")[0]).content.startswith(b"GIF89a")
            click = person.get(links(sara, "c")[0], follow_redirects=False)
            assert click.status_code == 302
            assert click.headers["location"].startswith("https://news.example.org/")
            # View in browser: the message as sent.
            view = person.get(links(sara, "v")[0])
            assert view.status_code == 200
            # MIME made the line ends CRLF; 8bit broke long lines at spaces between attributes.
            assert view.text.split() == sara.split()
    finally:
        live.stop()  # flushes the events
    stats = json.loads(cli.ok("stats", "--list", "daily", "--json").stdout)
    (edition,) = stats
    assert edition["sent"] == edition["delivered"] == 3
    assert edition["human_opens"] == 1  # Sara; the scanner's fetches are apart
    assert edition["machine_opens"] == 3
    assert edition["machine_reasons"] == {"safe_links": 15}
    assert edition["clicks"] == 1 and edition["machine_clicks"] == 3
    assert edition["top_links"][0]["clicks"] == 1
    assert edition["unsubscribes"] == 2
    assert edition["rates"]["open"] == round(1 / 3, 4)
    table = cli.ok("stats").stdout
    assert "human opens" in table and "machine opens" in table
