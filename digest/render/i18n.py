"""Languages of the emails: gettext catalogs (Babel), digits, Gregorian and Hijri dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from babel.dates import format_date
from babel.support import Translations
from hijridate import Gregorian

from digest.bundled import templates_dir
from digest.errors import InvalidInput

TEMPLATES = templates_dir()  # the installed copy, else the source tree's (digest/bundled)
LOCALE_DIR = TEMPLATES / "locale"
DOMAIN = "messages"
# Locale -> text direction. A locale is offered only once its catalog exists.
DIRECTIONS = {"ar": "rtl", "en": "ltr"}

Digits = Literal["arabic", "latin"]
_TO_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_HIJRI_SUFFIX = {"ar": "هـ", "en": "AH"}


@dataclass(frozen=True)
class Language:
    """Everything locale-specific a template needs: catalog, direction, digits, dates."""

    locale: str
    translations: Translations
    digits: Digits

    @property
    def direction(self) -> str:
        return DIRECTIONS[self.locale]

    @property
    def rtl(self) -> bool:
        return self.direction == "rtl"

    @property
    def align(self) -> str:
        """The start side: where text lines begin."""
        return "right" if self.rtl else "left"

    def gettext(self, message: str, **variables: object) -> str:
        return self.translations.gettext(message) % variables

    def ngettext(self, singular: str, plural: str, n: int, **variables: object) -> str:
        return self.raw_ngettext(singular, plural, n) % variables

    def raw_ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form for `n` with `%(num)s` already written in this language's digits."""
        return self.translations.ngettext(singular, plural, n).replace("%(num)s", self.number(n))

    def localise_digits(self, text: str) -> str:
        """`text` with ASCII digits shown in this language's digits."""
        return text.translate(_TO_ARABIC) if self.digits == "arabic" else text

    def number(self, n: int) -> str:
        return self.localise_digits(str(n))

    def gregorian(self, day: date) -> str:
        """`السبت، ١ مارس ٢٠٢٥` / `Saturday, March 1, 2025`."""
        return self.localise_digits(format_date(day, format="full", locale=self.locale))

    def hijri(self, day: date) -> str:
        """Umm al-Qura date: `١ رمضان ١٤٤٦ هـ` / `1 Ramadan 1446 AH` ("" outside its range)."""
        try:
            hijri = Gregorian(day.year, day.month, day.day).to_hijri()
        except OverflowError:
            return ""
        month = hijri.month_name("ar" if self.locale == "ar" else "en")
        text = f"{hijri.day} {month} {hijri.year}\u00a0{_HIJRI_SUFFIX.get(self.locale, 'AH')}"
        return self.localise_digits(text)


def load_language(
    locale: str, digits: Digits = "arabic", locale_dir: Path = LOCALE_DIR
) -> Language:
    """The language for `locale`; an unknown locale or a missing catalog is a clear error."""
    if locale not in DIRECTIONS:
        raise InvalidInput(
            f"unknown locale {locale!r}: emails exist in " + ", ".join(sorted(DIRECTIONS))
        )
    catalog = locale_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not catalog.is_file():
        raise InvalidInput(
            f"no compiled catalog {catalog}: run `pybabel compile -d {locale_dir} -D {DOMAIN}`"
        )
    with catalog.open("rb") as handle:
        translations = Translations(handle, domain=DOMAIN)
    # Only Arabic emails show Arabic-Indic digits; English always uses Latin ones.
    return Language(locale, translations, digits if locale == "ar" else "latin")
