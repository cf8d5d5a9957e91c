"""`[brand]`: the publisher's look in settings, not in templates: the publication's name, logo,
colours, footer postal address, social links and legal line, per language, and the WCAG AA
contrast of every pair of colours the built-in templates put on top of each other.

Templates never read these settings directly: they get `brand`, the `BrandView` of the
reader's language (`BrandSettings.view`), where an empty English value falls back to the
Arabic one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from digest.settings.fields import Section as _Section
from digest.settings.fields import check, valid
from digest.text.colours import AA_TEXT, colour_problem, contrast_ratio, format_ratio
from digest.text.controls import control_problem

__all__ = [
    "CONTRAST_PAIRS",
    "LEGACY_KEYS",
    "BrandSettings",
    "BrandView",
    "ContrastPair",
    "Logo",
    "SocialLink",
    "adopt_legacy_keys",
]

Colour = Annotated[str, valid(colour_problem)]


def _https_problem(value: str) -> str | None:
    problem = control_problem(value)
    if problem is not None:
        return problem
    if not value.lower().startswith("https://") or len(value) <= len("https://"):
        return f"{value[:80]!r} must be an https:// URL (mail clients block or warn on http)"
    if any(c.isspace() for c in value):
        return "must be a URL without spaces"
    return None


HttpsUrl = Annotated[str, valid(_https_problem)]
OptionalHttpsUrl = Annotated[str, valid(_https_problem, optional=True)]


class SocialLink(BaseModel):
    """One link of the footer: `{ name = "X", url = "https://x.com/example" }`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40)
    url: HttpsUrl

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        check(control_problem(value))
        return value


@dataclass(frozen=True)
class ContrastPair:
    """A text (or control) colour drawn on a background, and the ratio AA asks of it."""

    foreground: str
    background: str
    use: str
    minimum: float = AA_TEXT


# Every pair the built-in templates draw. All are held to 4.5:1: each colour is also used
# for text of body size somewhere (links, buttons, the footer), so none qualifies for the
# 3:1 of large text or of controls only. A template that draws another pair adds it here.
CONTRAST_PAIRS = (
    ContrastPair("text_colour", "content_background_colour", "email text"),
    ContrastPair("primary_colour", "content_background_colour", "email links and headings"),
    ContrastPair("muted_colour", "content_background_colour", "email small print"),
    ContrastPair("muted_colour", "background_colour", "email footer text"),
    ContrastPair("primary_colour", "background_colour", "email footer links"),
    ContrastPair("primary_text_colour", "primary_colour", "header and button text"),
    ContrastPair("page_text_colour", "page_background_colour", "web page text"),
    ContrastPair("page_text_colour", "page_surface_colour", "web page text in cards"),
    ContrastPair("primary_colour", "page_surface_colour", "web links and secondary buttons"),
    ContrastPair("primary_colour", "page_background_colour", "web links and focus rings"),
    ContrastPair("muted_colour", "page_surface_colour", "web page small print"),
)


class BrandSettings(_Section):
    """`[brand]`: defaults are the built-in look ("أخبار المثال", blue #0b4f6c)."""

    name: str = Field("أخبار المثال", min_length=1, max_length=120)
    name_en: str = Field("", max_length=120)  # empty: `name`
    logo_url: OptionalHttpsUrl = ""  # empty: the name is shown instead
    logo_width: int = Field(0, ge=0, le=600)
    logo_height: int = Field(0, ge=0, le=600)
    logo_alt: str = Field("", max_length=200)  # empty: `name`
    logo_alt_en: str = Field("", max_length=200)  # empty: `name_en`, else `logo_alt`
    primary_colour: Colour = "#0b4f6c"
    primary_text_colour: Colour = "#ffffff"
    accent_colour: Colour = "#f0b429"  # decoration only (rules, the note's stripe): no text
    background_colour: Colour = "#eef1f4"
    content_background_colour: Colour = "#ffffff"
    text_colour: Colour = "#1f2933"
    muted_colour: Colour = "#52606d"
    postal_address: str = Field("", max_length=300)
    postal_address_en: str = Field("", max_length=300)  # empty: `postal_address`
    social_links: list[SocialLink] = Field(default_factory=list, max_length=12)
    legal_line: str = Field("", max_length=500)
    legal_line_en: str = Field("", max_length=500)  # empty: `legal_line`
    page_background_colour: Colour = "#f0f4f8"
    page_surface_colour: Colour = "#ffffff"
    page_text_colour: Colour = "#102a43"

    @field_validator("social_links", mode="before")
    @classmethod
    def _json_links(cls, value: Any) -> Any:
        # `--set brand.social_links=[...]` and DIGEST_BRAND__SOCIAL_LINKS arrive as text.
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except ValueError:
                raise ValueError(
                    'write a JSON list: [{"name": "X", "url": "https://x.com/example"}]'
                ) from None
        return value

    @model_validator(mode="after")
    def _logo_and_contrast(self) -> BrandSettings:
        if self.logo_url and not (self.logo_width and self.logo_height):
            raise ValueError(
                "brand.logo_url is set: set brand.logo_width and brand.logo_height too "
                "(pixels; mail clients lay the email out before the image loads)"
            )
        problems = self.contrast_problems()
        if problems:  # all of them at once: fixing one colour may break another pair
            raise ValueError("; ".join(problems))
        return self

    def contrast_problems(self) -> list[str]:
        """Each pair of CONTRAST_PAIRS below its WCAG AA ratio, with both colours and the
        ratio."""
        problems = []
        for pair in CONTRAST_PAIRS:
            front, back = getattr(self, pair.foreground), getattr(self, pair.background)
            ratio = contrast_ratio(front, back)
            if ratio < pair.minimum:
                problems.append(
                    f"brand.{pair.foreground} {front} on brand.{pair.background} {back} "
                    f"({pair.use}) has a contrast of {format_ratio(ratio)}; WCAG AA needs "
                    f"{pair.minimum:g}:1: make one of them darker or lighter"
                )
        return problems

    def view(self, locale: str) -> BrandView:
        """What the templates of `locale` show (English falls back to the Arabic values)."""
        arabic = locale.startswith("ar")
        name = self.name if arabic else (self.name_en or self.name)
        alt = self.logo_alt if arabic else (self.logo_alt_en or self.name_en or self.logo_alt)
        logo = (
            Logo(self.logo_url, self.logo_width, self.logo_height, alt or name)
            if self.logo_url
            else None
        )
        return BrandView(
            name=name,
            logo=logo,
            postal_address=self.postal_address
            if arabic
            else (self.postal_address_en or self.postal_address),
            legal_line=self.legal_line if arabic else (self.legal_line_en or self.legal_line),
            social_links=tuple(self.social_links),
            primary_colour=self.primary_colour,
            primary_text_colour=self.primary_text_colour,
            accent_colour=self.accent_colour,
            background_colour=self.background_colour,
            content_background_colour=self.content_background_colour,
            text_colour=self.text_colour,
            muted_colour=self.muted_colour,
            page_background_colour=self.page_background_colour,
            page_surface_colour=self.page_surface_colour,
            page_text_colour=self.page_text_colour,
        )


@dataclass(frozen=True)
class Logo:
    """The logo as an email shows it: `<img src width height alt>`."""

    url: str
    width: int
    height: int
    alt: str


@dataclass(frozen=True)
class BrandView:
    """The brand in one language: the `brand` object of every email and web template."""

    name: str
    logo: Logo | None
    postal_address: str
    legal_line: str
    social_links: tuple[SocialLink, ...]
    primary_colour: str
    primary_text_colour: str
    accent_colour: str
    background_colour: str
    content_background_colour: str
    text_colour: str
    muted_colour: str
    page_background_colour: str
    page_surface_colour: str
    page_text_colour: str


# Keys the brand took over, still read so settings files written before `[brand]` keep
# working: (section, key) -> the brand's key. A `[brand]` value wins over an old key.
LEGACY_KEYS = {
    ("render", "publisher_name"): "name",
    ("render", "publisher_name_en"): "name_en",
    ("sender", "postal_address"): "postal_address",
}


def adopt_legacy_keys(cls: type[Any], data: Any) -> Any:
    """Settings' before-validator: move the LEGACY_KEYS found in `data` into `brand`."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    moved: dict[str, Any] = {}
    for (section, key), field in LEGACY_KEYS.items():
        part = data.get(section)
        if isinstance(part, dict) and key in part:
            part = dict(part)
            moved[field] = part.pop(key)
            data[section] = part
    if moved:
        brand = data.get("brand", {})
        if isinstance(brand, BaseModel):
            brand = brand.model_dump(exclude_unset=True)
        data["brand"] = {**moved, **brand} if isinstance(brand, dict) else brand
    return data
