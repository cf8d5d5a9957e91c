"""Web pages and the brand: a page served by the real app shows the brand's name, logo and
colours in the reader's language, and its Content-Security-Policy admits only the logo's
host besides the site itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.settings.brand import BrandSettings
from digest.web import create_app
from digest.web.pages import PAGE_HEADERS, with_image_origin
from tests.helpers.world import make_world

BRAND = BrandSettings(
    name="صحيفة الغد",
    name_en="Tomorrow Daily",
    primary_colour="#6a1b4d",
    primary_text_colour="#fdfdfd",
    page_background_colour="#f6f1ea",
    page_surface_colour="#fffefb",
    page_text_colour="#231a10",
    muted_colour="#5c4d3c",
    logo_url="https://cdn.example.org/logo.png",
    logo_width=150,
    logo_height=36,
    logo_alt_en="Tomorrow Daily logo",
)
PAGE_COLOURS = (
    "primary_colour",
    "primary_text_colour",
    "page_background_colour",
    "page_surface_colour",
    "page_text_colour",
    "muted_colour",
)
BUILT_IN = ("#0b4f6c", "#f0f4f8", "#52606d", "#f0b429")


@pytest.fixture
def branded(web_settings: Settings, engine: Engine, session: Session) -> Iterator[TestClient]:
    make_world(session)
    settings = web_settings.model_copy(update={"brand": BRAND})
    with TestClient(create_app(settings, engine), follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("path", ["/subscribe?list=daily", "/subscribe?list=nope", "/editor/login"])
def test_pages_show_the_brand_name_logo_and_colours(branded: TestClient, path: str) -> None:
    page = branded.get(path)
    html = page.text.lower()
    assert "صحيفة الغد" in page.text
    for key in PAGE_COLOURS:
        assert getattr(BRAND, key) in html, key
    for colour in BUILT_IN:
        assert colour not in html, f"{colour} is still hard-coded"
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' https://cdn.example.org data:" in policy


def test_subscriber_pages_show_the_logo_with_its_size_and_the_english_name(
    branded: TestClient,
) -> None:
    arabic = branded.get("/subscribe?list=daily").text
    assert '<img src="https://cdn.example.org/logo.png" width="150" height="36"' in arabic
    assert 'alt="صحيفة الغد"' in arabic  # no alt text set: the name
    english = branded.get("/subscribe?list=daily&lang=en").text
    assert 'alt="Tomorrow Daily logo"' in english
    assert "— Tomorrow Daily</title>" in english and "صحيفة الغد" not in english


def test_default_pages_keep_the_built_in_look(client: TestClient, session: Session) -> None:
    make_world(session)
    page = client.get("/subscribe?list=daily")
    assert "أخبار المثال" in page.text and "#0b4f6c" in page.text
    assert page.headers["content-security-policy"] == PAGE_HEADERS["Content-Security-Policy"]


def test_only_a_plain_https_host_joins_the_image_sources() -> None:
    policy = PAGE_HEADERS["Content-Security-Policy"]
    assert with_image_origin(PAGE_HEADERS, "")["Content-Security-Policy"] == policy
    for odd in ("https://a.example;script-src:x/l.png", "https://a.example:99999/l.png"):
        assert with_image_origin(PAGE_HEADERS, odd)["Content-Security-Policy"] == policy
    ported = with_image_origin(PAGE_HEADERS, "https://CDN.example.org:8443/l.png")
    assert "img-src 'self' https://cdn.example.org:8443 data:" in ported["Content-Security-Policy"]
