"""Languages: Arabic plural forms, digits, Hijri and Gregorian dates, catalogs kept current."""

from __future__ import annotations

import gettext
import io
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from digest.errors import InvalidInput
from digest.render.i18n import DIRECTIONS, LOCALE_DIR, TEMPLATES, load_language

ARTICLES = ("%(num)s article", "%(num)s articles")


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "لا مقالات"),
        (1, "مقال واحد"),
        (2, "مقالان"),
        (3, "٣ مقالات"),
        (10, "١٠ مقالات"),
        (11, "١١ مقالًا"),
        (99, "٩٩ مقالًا"),
        (100, "١٠٠ مقال"),
        (103, "١٠٣ مقالات"),
        (111, "١١١ مقالًا"),
    ],
)
def test_arabic_plural_forms_read_naturally(count: int, expected: str) -> None:
    assert load_language("ar").ngettext(*ARTICLES, count) == expected


def test_latin_digits_and_english_plurals() -> None:
    assert load_language("ar", "latin").ngettext(*ARTICLES, 11) == "11 مقالًا"
    english = load_language("en", "arabic")  # English always uses Latin digits
    assert [english.ngettext(*ARTICLES, n) for n in (0, 1, 2, 11)] == [
        "0 articles", "1 article", "2 articles", "11 articles",
    ]  # fmt: skip
    assert english.gettext("Hello %(name)s,", name="Jane") == "Hello Jane,"


def test_hijri_and_gregorian_dates_of_a_known_day() -> None:
    day = date(2025, 3, 1)  # first day of Ramadan 1446 (Umm al-Qura)
    arabic = load_language("ar")
    assert arabic.hijri(day) == "١ رمضان ١٤٤٦\u00a0هـ"
    assert arabic.gregorian(day) == "السبت، ١ مارس ٢٠٢٥"
    english = load_language("en")
    assert english.hijri(day) == "1 Ramadan 1446\u00a0AH"
    assert english.gregorian(day) == "Saturday, March 1, 2025"
    assert load_language("ar", "latin").hijri(date(2024, 6, 16)) == "10 ذو الحجة 1445\u00a0هـ"
    assert arabic.hijri(date(1800, 1, 1)) == ""  # outside Umm al-Qura tables: no Hijri line


def test_directions() -> None:
    assert (load_language("ar").direction, load_language("ar").align) == ("rtl", "right")
    assert (load_language("en").direction, load_language("en").align) == ("ltr", "left")


def test_unknown_locale_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="unknown locale 'fr': emails exist in ar, en"):
        load_language("fr")


def test_missing_catalog_says_how_to_compile(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="pybabel compile"):
        load_language("ar", locale_dir=tmp_path)


@pytest.mark.parametrize("locale", sorted(DIRECTIONS))
def test_compiled_mo_files_are_up_to_date_with_the_po_files(locale: str) -> None:
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    fresh = io.BytesIO()
    write_mo(fresh, catalog)
    fresh.seek(0)
    committed = (folder / "messages.mo").read_bytes()
    current = gettext.GNUTranslations(io.BytesIO(committed))
    expected = gettext.GNUTranslations(fresh)
    assert current._catalog == expected._catalog, (  # type: ignore[attr-defined]
        f"run `pybabel compile -d {LOCALE_DIR.relative_to(TEMPLATES.parent)}`"
    )


@pytest.mark.parametrize("locale", sorted(DIRECTIONS))
def test_every_message_of_the_templates_is_translated(locale: str) -> None:
    method_map = [("**.j2", "jinja2")]
    options = {"**.j2": {"extensions": "jinja2.ext.i18n"}}
    extracted = {
        message if isinstance(message, str) else message[0]
        for *_, message, _comments, _context in extract_from_dir(
            TEMPLATES, method_map, options_map=options
        )
    }
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    in_catalog = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    assert extracted - in_catalog == set(), "run pybabel extract + update (see babel.cfg)"
    assert in_catalog - extracted == set(), "obsolete messages: run pybabel update"
    untranslated = [m.id for m in catalog if m.id and not all(_strings(m.string))]
    assert untranslated == []


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value
