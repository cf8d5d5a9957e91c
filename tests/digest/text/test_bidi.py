"""Bidi islands: Latin and number runs in Arabic text become LTR spans; input is escaped."""

from __future__ import annotations

from markupsafe import Markup

from digest.text.bidi import bidi, bidi_in_ltr, has_arabic, starts_rtl

RLM = "\u200f"


def test_latin_and_number_runs_become_ltr_islands() -> None:
    assert bidi("ارتفاع مؤشر S&P 500 بنسبة 1.5%") == (
        'ارتفاع مؤشر <span dir="ltr">S&amp;P 500</span> بنسبة <span dir="ltr">1.5%</span>'
    )
    assert bidi("هاتف iPhone 15 Pro الجديد") == 'هاتف <span dir="ltr">iPhone 15 Pro</span> الجديد'
    assert bidi("سعر $100 و COVID-19 عند 09:30") == (
        'سعر <span dir="ltr">$100</span> و <span dir="ltr">COVID-19</span> عند '
        '<span dir="ltr">09:30</span>'
    )


def test_quotes_and_arabic_punctuation_survive() -> None:
    text = "قال «المتحدث»: هل انتهى الاجتماع؟ نعم؛ انتهى، والحمد لله."
    assert bidi(text) == text


def test_rlm_pins_punctuation_after_a_latin_run() -> None:
    assert bidi("أعلنت شركة Apple، ثم Google.") == (
        f'أعلنت شركة <span dir="ltr">Apple</span>{RLM}، ثم <span dir="ltr">Google</span>{RLM}.'
    )


def test_input_is_escaped_and_markup_comes_back() -> None:
    result = bidi('عنوان <img src=x onerror="alert(1)"> و <script>')
    assert isinstance(result, Markup)
    assert "<img" not in result and "<script" not in result
    assert "&lt;" in result and "&#34;" in result
    assert bidi("<b>plain English</b>") == "&lt;b&gt;plain English&lt;/b&gt;"


def test_trusted_markup_passes_through_and_latin_text_gets_no_islands() -> None:
    trusted = Markup('<span dir="ltr">x</span>')
    assert bidi(trusted) is trusted
    assert bidi("Markets rose 2% today") == "Markets rose 2% today"
    assert bidi(42) == "42"


def test_starts_rtl_and_has_arabic() -> None:
    assert starts_rtl("مرحبًا") == "مرحبًا"
    assert starts_rtl("S&P يرتفع") == RLM + "S&P يرتفع"
    assert starts_rtl(RLM + "x") == RLM + "x"
    assert starts_rtl("") == RLM
    assert has_arabic("abc ب") and not has_arabic("abc 123")


def test_arabic_inside_an_english_email_is_one_rtl_island() -> None:
    assert bidi_in_ltr("خبر عن Apple.") == (
        f'<span dir="rtl">خبر عن <span dir="ltr">Apple</span>{RLM}.</span>'
    )
    assert bidi_in_ltr("News <about> Apple") == "News &lt;about&gt; Apple"
