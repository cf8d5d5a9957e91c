"""The brand in emails: `[brand]` settings change the name, logo, colours, postal address,
social links and legal line of every email, in both languages and in the plain-text twin,
and no colour of the built-in look is left hard-coded in a template."""

from __future__ import annotations

import pytest

from digest.config import Settings
from digest.render.renderer import Renderer
from digest.settings.brand import BrandSettings, SocialLink
from tests.helpers.render_samples import DAY, TOPICS, parse, recipient, renderer, segment

BRAND = BrandSettings(
    name="صحيفة الغد",
    name_en="Tomorrow Daily",
    logo_url="https://cdn.example.org/logo.png",
    logo_width=180,
    logo_height=40,
    logo_alt="شعار صحيفة الغد",
    logo_alt_en="Tomorrow Daily logo",
    primary_colour="#6a1b4d",
    primary_text_colour="#fdfdfd",
    accent_colour="#e4572e",
    background_colour="#f4efe6",
    content_background_colour="#fffdf8",
    text_colour="#2b2118",
    muted_colour="#5c4d3c",
    postal_address="ص.ب. 777، جدة 21411",
    postal_address_en="P.O. Box 777, Jeddah 21411",
    social_links=[SocialLink(name="X", url="https://x.com/tomorrow")],
    legal_line="سجل تجاري 4030000000",
    legal_line_en="Commercial registration 4030000000",
)
EMAIL_COLOURS = (
    "primary_colour",
    "primary_text_colour",
    "accent_colour",
    "background_colour",
    "content_background_colour",
    "text_colour",
    "muted_colour",
)
# The built-in look's colours that are the brand's (white aside: MJML writes it itself).
BUILT_IN = ("#0b4f6c", "#eef1f4", "#1f2933", "#52606d", "#f0b429", "#627d98", "#102a43", "#d6e6ef")


@pytest.fixture
def branded(settings: Settings) -> Renderer:
    return renderer(settings, brand=BRAND)


def test_arabic_digest_carries_the_logo_colours_address_links_and_legal_line(
    branded: Renderer,
) -> None:
    message = branded.compile_digest(segment(3)).personalise(recipient())
    parsed = parse(message.html)
    (logo,) = [i for i in parsed.all("img") if i.attrs.get("src") == BRAND.logo_url]
    assert (logo.attrs["width"], logo.attrs["height"]) == ("180", "40")
    assert logo.attrs["alt"] == "شعار صحيفة الغد"
    visible = parsed.visible_text.replace("\u200f", "")  # bidi marks after Latin digits
    for words in ("صحيفة الغد", "ص.ب. 777، جدة 21411", "سجل تجاري 4030000000"):
        assert words in visible
    (social,) = [a for a in parsed.all("a") if a.attrs["href"] == "https://x.com/tomorrow"]
    assert social.text == "X" and BRAND.primary_colour in social.attrs["style"]
    html = message.html.lower()
    for key in EMAIL_COLOURS:
        assert getattr(BRAND, key) in html, key
    for colour in BUILT_IN:
        assert colour not in html, f"{colour} is still hard-coded"


def test_plain_text_twin_carries_the_name_address_links_and_legal_line(branded: Renderer) -> None:
    text = branded.compile_digest(segment(2)).personalise(recipient()).text
    lines = text.replace("\u200f", "").splitlines()
    assert lines[0].lstrip("\u200f").startswith("صحيفة الغد — ")
    assert any(line.endswith("صحيفة الغد — ص.ب. 777، جدة 21411") for line in lines)
    assert any(line.endswith("سجل تجاري 4030000000") for line in lines)
    assert "https://x.com/tomorrow" in lines  # a URL on a line of its own
    assert "أخبار المثال" not in text


def test_english_digest_uses_the_english_name_address_alt_and_legal_line(
    branded: Renderer,
) -> None:
    message = branded.compile_digest(segment(2, locale="en", list_name="Daily")).personalise(
        recipient()
    )
    parsed = parse(message.html)
    (logo,) = [i for i in parsed.all("img") if i.attrs.get("src") == BRAND.logo_url]
    assert logo.attrs["alt"] == "Tomorrow Daily logo"
    for words in ("Tomorrow Daily", "P.O. Box 777, Jeddah 21411", "Commercial registration"):
        assert words in parsed.visible_text
        assert words in message.text
    assert "صحيفة الغد" not in message.text and "ص.ب." not in message.html
    assert message.text.splitlines()[0] == "Tomorrow Daily — Daily"


def test_without_a_logo_the_header_shows_the_name(settings: Settings) -> None:
    plain = renderer(settings, brand=BRAND.model_copy(update={"logo_url": ""}))
    message = plain.compile_digest(segment(1)).personalise(recipient())
    parsed = parse(message.html)
    assert not [i for i in parsed.all("img") if i.attrs.get("src") == BRAND.logo_url]
    assert parsed.visible_text.count("صحيفة الغد") == 2  # the header and the footer


def test_subject_placeholder_publisher_is_the_brand_name(settings: Settings) -> None:
    subject = renderer(settings, brand=BRAND, subject="{publisher}: {top_title}")
    assert subject.compile_digest(segment(1)).subject.lstrip("\u200f").startswith("صحيفة الغد:")


def test_confirmation_and_welcome_carry_the_brand(branded: Renderer) -> None:
    confirmation = branded.compile_confirmation(list_name="النشرة", locale="ar", day=DAY)
    welcome = branded.compile_welcome(list_name="Daily", locale="en", day=DAY, topics=TOPICS[:1])
    for compiled, name, address in (
        (confirmation, "صحيفة الغد", "ص.ب. 777، جدة 21411"),
        (welcome, "Tomorrow Daily", "P.O. Box 777, Jeddah 21411"),
    ):
        message = compiled.personalise(recipient())
        text = message.text.replace("\u200f", "")
        assert name in text and address in text
        assert address in parse(message.html).visible_text.replace("\u200f", "")
        html = message.html.lower()
        assert BRAND.primary_colour in html and BRAND.background_colour in html
        for colour in BUILT_IN:
            assert colour not in html, f"{colour} is still hard-coded"
