"""Open pixel and click redirect: always an image, human and machine apart, no open redirect."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Event
from digest.errors import ConfigError
from digest.tracking.machines import classify
from digest.tracking.tokens import Purpose, Signer
from digest.web import create_app
from subscribers.people import find_subscriber
from tests.helpers.web import (
    SENT_AT,
    add_news,
    deliveries,
    event_count,
    html_of,
    links,
    reader,
    send_digests,
    wait_for,
    with_base_url,
)
from tests.helpers.world import World

BASE = "http://127.0.0.1:8000"  # loopback: the placeholder secret of settings.toml is allowed
APPLE_MPP = "Mozilla/5.0"
GOOGLE = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0"
OUTLOOK = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
SCANNERS = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "BingPreview/1.0b": "safe_links",
    "Barracuda Sentinel (EE)": "barracuda",
    "Mozilla/5.0 Proofpoint URL Defense": "proofpoint",
    "Mimecast-URL-Protect/1.0": "mimecast",
    "python-requests/2.31": "http_library",
}


def _sent(engine: Engine, session: Session, world: World, settings: Settings) -> dict[str, str]:
    reader(session, world, "reem@example.org", ["politics", "economy"])
    add_news(session, world)
    message = send_digests(engine, world, with_base_url(settings, BASE))["reem@example.org"]
    html = html_of(message)
    (pixel,) = links(html, "o")
    clicks = links(html, "c")
    assert len(clicks) >= 2
    return {"pixel": urlsplit(pixel).path, "click": urlsplit(clicks[0]).path}


def test_pixel_is_a_gif_that_is_never_cached_and_records_a_human_open(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    urls = _sent(engine, session, world, web_settings)
    response = client.get(urls["pixel"], headers={"User-Agent": THUNDERBIRD})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and len(response.content) == 43
    assert "no-store" in response.headers["cache-control"]
    wait_for(lambda: event_count(engine, kind="open") == 1)
    with Session(engine) as s:
        event = s.exec(select(Event)).one()
    (delivery,) = deliveries(engine)
    assert (event.delivery_id, event.subscriber_id, event.list_id) == (
        delivery.id,
        delivery.subscriber_id,
        world.daily.id,
    )
    assert (event.machine, event.machine_reason) == (False, "")
    assert event.user_agent == THUNDERBIRD and event.ip == "testclient"
    assert event.at.tzinfo is not None


@pytest.mark.parametrize(
    ("agent", "method", "reason"),
    [
        (APPLE_MPP, "GET", "apple_mpp"),
        (GOOGLE, "GET", "google_image_proxy"),
        (THUNDERBIRD, "HEAD", "head_request"),
        ("", "GET", "no_user_agent"),
        *((agent, "GET", reason) for agent, reason in SCANNERS.items()),
    ],
)
def test_machine_opens_are_flagged_with_their_reason(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    client: TestClient,
    agent: str,
    method: str,
    reason: str,
) -> None:
    urls = _sent(engine, session, world, web_settings)
    response = client.request(method, urls["pixel"], headers={"User-Agent": agent})
    assert response.status_code == 200
    wait_for(lambda: event_count(engine, kind="open") == 1)
    with Session(engine) as s:
        event = s.exec(select(Event)).one()
    assert (event.machine, event.machine_reason) == (True, reason)


def test_real_mail_clients_are_people() -> None:
    for agent in (IPHONE_MAIL, THUNDERBIRD, OUTLOOK):
        assert classify(agent) == classify(agent, method="get")
        assert not classify(agent).machine, agent


def test_a_fetch_seconds_after_delivery_is_a_scanner(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    urls = _sent(engine, session, world, web_settings)
    (delivery,) = deliveries(engine)
    assert delivery.sent_at == SENT_AT
    now = [SENT_AT + timedelta(seconds=3)]  # the app's background tasks read the clock too
    app = create_app(web_settings, engine, clock=lambda: now[0])
    with TestClient(app) as client:
        client.get(urls["pixel"], headers={"User-Agent": THUNDERBIRD})
        now[0] = SENT_AT + timedelta(minutes=20)
        client.get(urls["pixel"], headers={"User-Agent": THUNDERBIRD})
    with Session(engine) as s:
        verdicts = [(e.machine, e.machine_reason) for e in s.exec(select(Event).order_by(Event.at))]  # type: ignore[arg-type]
    assert verdicts == [(True, "right_after_delivery"), (False, "")]


def test_a_bad_open_token_still_gets_the_image_and_records_nothing(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    urls = _sent(engine, session, world, web_settings)
    forged = urls["pixel"].replace("/o/", "/o/9").replace(".gif", "x.gif")
    for path in (forged, "/o/1.gif", "/o/1.abc.gif", "/o/" + "A" * 3000 + ".gif"):
        response = client.get(path)
        assert response.status_code == 200 and response.content.startswith(b"GIF89a")
    client.get(urls["pixel"])  # a real one, to know the writer ran
    wait_for(lambda: event_count(engine) == 1)


def test_click_redirects_to_the_article_and_counts_it(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    urls = _sent(engine, session, world, web_settings)
    response = client.get(urls["click"], headers={"User-Agent": IPHONE_MAIL})
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://news.example.org/")
    assert response.headers["referrer-policy"] == "no-referrer"
    wait_for(lambda: event_count(engine, kind="click") == 1)
    with Session(engine) as s:
        event = s.exec(select(Event)).one()
    assert event.link_hash == urls["click"].rsplit(".", 1)[1] and not event.machine


def test_click_refuses_altered_tokens_with_400_and_never_redirects(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    urls = _sent(engine, session, world, web_settings)
    token = urls["click"].removeprefix("/c/")
    payload, signature, link_hash = token.split(".")
    signer = Signer(web_settings.web.secret_key)
    altered = [
        f"{int(payload) + 1}.{signature}.{link_hash}",  # another delivery
        f"{payload}.{signature[:-1]}A.{link_hash}",  # signature changed
        f"{payload}.{signature}",  # hash cut off
        f"{payload}.{signature}.{'0' * 12}",  # a hash we never stored
        f"{signer.dumps(Purpose.OPEN, int(payload))}.{link_hash}",  # another purpose's salt
        f"{Signer('another-key').dumps(Purpose.CLICK, int(payload))}.{link_hash}",
        "https%3A%2F%2Fevil.example.com",
        f"{payload}.{signature}.{link_hash}%2F%2Fevil.example.com",
        f"{payload}.{'é' * len(signature)}.{link_hash}",  # a tag's length, not ASCII
    ]
    for bad in altered:
        response = client.get(f"/c/{bad}")
        assert response.status_code in (400, 404), bad
        assert "location" not in response.headers
        assert "<html" in response.text and "Traceback" not in response.text
    assert event_count(engine) == 0


_SHARED: dict[int, tuple[str, TestClient]] = {}


def _click_and_app(
    engine: Engine, session: Session, world: World, settings: Settings
) -> tuple[str, TestClient]:
    """One sent digest and one app for every example of a property test (same engine)."""
    if id(engine) not in _SHARED:
        _SHARED.clear()
        urls = _sent(engine, session, world, settings)
        app = TestClient(create_app(settings, engine), follow_redirects=False)
        _SHARED[id(engine)] = (urls["click"].removeprefix("/c/"), app)
    return _SHARED[id(engine)]


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mutation_of_a_click_token_is_refused(
    engine: Engine, session: Session, world: World, web_settings: Settings, data: st.DataObject
) -> None:
    # Property: a token changed anywhere (a character replaced, cut, or extended) never
    # redirects; only the token exactly as signed leads to the article.
    token, app = _click_and_app(engine, session, world, web_settings)
    position = data.draw(st.integers(0, len(token) - 1))
    alphabet = st.sampled_from("0123456789abcdefABCDEF-_.xyz")
    how = data.draw(st.sampled_from(["replace", "cut", "extend"]))
    if how == "replace":
        char = data.draw(alphabet.filter(lambda c: c != token[position]))
        mutated = token[:position] + char + token[position + 1 :]
    elif how == "cut":
        mutated = token[:position]
    else:
        mutated = token + data.draw(st.text(alphabet, min_size=1, max_size=5))
    response = app.get(f"/c/{mutated}")
    assert response.status_code in (400, 404)
    assert "location" not in response.headers
    assert app.get(f"/c/{token}").status_code == 302  # the genuine one still works


def _two_digests(
    engine: Engine, session: Session, world: World, settings: Settings
) -> dict[str, list[str]]:
    """Two readers with no article in common: recipient -> the click paths of their digest."""
    reader(session, world, "reem@example.org", ["politics"])
    reader(session, world, "omar@example.org", ["sports"])
    add_news(session, world)
    messages = send_digests(engine, world, with_base_url(settings, BASE))
    return {to: [urlsplit(u).path for u in links(html_of(m), "c")] for to, m in messages.items()}


def test_a_click_token_does_not_cover_another_digests_link(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    # Regression (issue 14, item 13): the signature covered the delivery only, so a reader's
    # token followed by another digest's link hash recorded a click (and redirected).
    clicks = _two_digests(engine, session, world, web_settings)
    reem, omar = clicks["reem@example.org"], clicks["omar@example.org"]
    omar_hashes = {p.rsplit(".", 1)[1] for p in omar}
    assert not omar_hashes & {p.rsplit(".", 1)[1] for p in reem}
    assert len({p.rsplit(".", 1)[0] for p in reem}) == len(reem)  # a token per link
    for foreign in omar_hashes:
        response = client.get(f"{reem[0].rsplit('.', 1)[0]}.{foreign}")
        assert response.status_code == 400 and "location" not in response.headers
    assert client.get(reem[0]).status_code == 302  # her own link
    wait_for(lambda: event_count(engine, kind="click") == 1)
    client.get(omar[0])
    wait_for(lambda: event_count(engine, kind="click") == 2)
    assert event_count(engine, kind="click") == 2


def test_links_of_emails_sent_before_link_tags_still_work(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    # Old emails carry `{delivery}.{signature of the delivery}.{hash}`: they still lead to
    # the article, and count only for the delivery's own links.
    clicks = _two_digests(engine, session, world, web_settings)
    with Session(engine) as s:
        reem_id = find_subscriber(s, "reem@example.org").id
    (reem,) = [d for d in deliveries(engine) if d.subscriber_id == reem_id]
    legacy = Signer(web_settings.web.secret_key).dumps(Purpose.CLICK, reem.id or 0)
    ours = clicks["reem@example.org"][0].rsplit(".", 1)[1]
    theirs = clicks["omar@example.org"][0].rsplit(".", 1)[1]
    assert client.get(f"/c/{legacy}.{ours}").status_code == 302
    wait_for(lambda: event_count(engine, kind="click") == 1)
    assert client.get(f"/c/{legacy}.{theirs}").status_code == 302  # still only a stored link
    client.get(clicks["omar@example.org"][0])  # a counted click, to know the writer ran
    wait_for(lambda: event_count(engine, kind="click") == 2)
    with Session(engine) as s:
        counted = [e.link_hash for e in s.exec(select(Event).order_by(Event.id))]  # type: ignore[arg-type]
    assert counted == [ours, theirs] and event_count(engine, delivery_id=reem.id) == 1


def test_digests_are_not_signed_with_a_weak_secret_when_links_reach_others(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    # Regression (issue 14, item 10): `digest send` signed links with `change-me` whatever
    # web.base_url was, so anyone could forge every reader's unsubscribe and clicks.
    reader(session, world, "reem@example.org", ["politics"])
    add_news(session, world)
    public = with_base_url(web_settings, "https://news.example.org")
    for weak in ("change-me", "x" * 31):
        settings = public.model_copy(
            update={"web": public.web.model_copy(update={"secret_key": weak})}
        )
        with pytest.raises(ConfigError, match=r"DIGEST_WEB__SECRET_KEY.*token_urlsafe\(48\)"):
            send_digests(engine, world, settings)
    assert deliveries(engine) == []
    strong = public.web.model_copy(update={"secret_key": "s" * 32})
    assert send_digests(engine, world, public.model_copy(update={"web": strong}))
