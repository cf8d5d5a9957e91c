"""Arabic normalisation for matching, on real word forms."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.text import arabic


@pytest.mark.parametrize(
    ("written", "plain"),
    [
        ("الْعَرَبِيَّةُ", "العربية"),  # sukun, fatha, kasra, shadda, damma
        ("مُحَمَّدٌ", "محمد"),  # tanween
        ("القـــاهرة", "القاهرة"),  # tatweel
        ("قُرْآن", "قرآن"),  # آ is a letter (unified later), not a mark
    ],
)
def test_remove_diacritics_and_tatweel(written: str, plain: str) -> None:
    assert arabic.remove_diacritics(written) == plain


@pytest.mark.parametrize(
    ("written", "unified"),
    [
        ("أحمد", "احمد"),
        ("إسلام", "اسلام"),
        ("آمال", "امال"),
        ("ٱلله", "الله"),
        ("مستشفى", "مستشفي"),
        ("مدرسة", "مدرسه"),
        ("مؤتمر", "موتمر"),
        ("رئيس", "رييس"),
    ],
)
def test_unify_letters(written: str, unified: str) -> None:
    assert arabic.unify_letters(written) == unified


def test_arabic_indic_digits_become_ascii() -> None:
    assert arabic.ascii_digits("ارتفع ١٫٥٪ في ٢٠٢٦") == "ارتفع 1.5% في 2026"
    assert arabic.ascii_digits("۱۲۳") == "123"  # extended (Persian) digits


def test_normalize_is_for_matching_only() -> None:
    original = "الإقْتِصَادُ"
    assert arabic.normalize(original) == "الاقتصاد"
    assert original == "الإقْتِصَادُ"  # the caller's text is untouched
    assert arabic.normalize("ﻻ") == "لا"  # presentation forms folded (NFKC)
    assert arabic.normalize("OPEC") == "opec"


def test_spellings_of_one_word_meet() -> None:
    # With or without hamza, taa marbuta written as haa, with diacritics: one form.
    spellings = ["الإقتصاد", "الاقتصاد", "الاِقْتِصَاد", "الإقتـصاد"]
    assert {arabic.normalize(s) for s in spellings} == {"الاقتصاد"}
    assert arabic.normalize("رياضة") == arabic.normalize("رياضه") == arabic.normalize("رِيَاضَة")


def test_tokens_drop_punctuation_and_quotes_but_keep_numbers_and_codes() -> None:
    assert arabic.tokens("تنظيم «داعش» يتبنى الهجوم.") == ["تنظيم", "داعش", "يتبني", "الهجوم"]
    assert arabic.tokens("مؤشر S&P 500 ارتفع 1.5%،") == ["موشر", "s&p", "500", "ارتفع", "1.5"]
    assert arabic.tokens("ارتفع ١٫٥٪") == ["ارتفع", "1.5"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("والاقتصاد", "اقتصاد"),  # و + ال
        ("بالسياره", "سياره"),  # ب + ال
        ("للحكومه", "حكومه"),  # لل = ل + ال
        ("وللحكومه", "حكومه"),  # و + لل
        ("فالمنتخب", "منتخب"),  # ف + ال
        ("كالعاده", "عاده"),  # ك + ال
        ("لداعش", "داعش"),  # ل
        ("وبمصر", "مصر"),  # و + ب
    ],
)
def test_word_forms_strip_clitic_prefixes(word: str, stem: str) -> None:
    assert stem in arabic.word_forms(word)
    assert word in arabic.word_forms(word)


def test_word_forms_keep_a_stem_of_three_letters() -> None:
    # "له" (to him) is not "الله" without its article.
    assert "له" not in arabic.word_forms("الله")
    assert arabic.base_form("الله") == "الله"


def test_word_forms_never_strip_suffixes() -> None:
    assert "عرب" not in arabic.word_forms("عربه")  # عربة (a cart) is not عرب (Arabs)
    assert "عرب" in arabic.word_forms("والعرب")


def test_base_form_strips_only_the_article() -> None:
    assert arabic.base_form("الاقتصاد") == "اقتصاد"
    assert arabic.base_form("وزاره") == "وزاره"  # its own first letter, not a conjunction
    assert arabic.base_form("بنك") == "بنك"


def test_phrase_key_of_names_spelled_differently() -> None:
    assert arabic.phrase_key("الإقتصاد") == arabic.phrase_key("اقتصاد") == ("اقتصاد",)
    assert arabic.phrase_key("الأمم المتحدة") == ("امم", "متحده")
    assert arabic.phrase_key("Middle-East") == ("middle", "east")


def test_is_mostly_arabic() -> None:
    assert arabic.is_mostly_arabic("ارتفاع مؤشر S&P 500")
    assert not arabic.is_mostly_arabic("Oil prices rise")
    assert not arabic.is_mostly_arabic("2026")


def test_normalize_is_the_step_by_step_functions_in_one_pass() -> None:
    block = "".join(chr(c) for c in range(0x0600, 0x0700)) + "ABC abc ٠١٢٣٤٥٦٧٨٩"
    folded = unicodedata.normalize("NFKC", block)
    step_by_step = arabic.ascii_digits(arabic.unify_letters(arabic.remove_diacritics(folded)))
    assert arabic.normalize(block) == step_by_step.casefold()


_TEXT = st.text(
    alphabet=st.sampled_from(
        list("ابتةأإآىؤئـًٌٍَُِّْ٠١٢٫٬٪۵") + list("abcZ09_.,&'’«»،؛:!?-/") + list(" \t\n\u00a0\u2003")
    )
    | st.characters(),
    max_size=80,
)


@given(_TEXT)
@settings(max_examples=400, deadline=None)
def test_tokens_are_the_token_pattern_over_the_normalised_text(text: str) -> None:
    assert arabic.tokens(text) == arabic._TOKEN.findall(arabic.normalize(text))


def _one_substitution(text: str) -> str:
    """The matching form as one simultaneous substitution (what `normalize` must equal)."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(arabic._MATCHING_CHARS.get(c, c) for c in folded).casefold()


def test_no_replacement_is_itself_a_character_to_change() -> None:
    # What makes replacing one character after the other the same as all at once.
    assert not {to for _, to in arabic._REPLACED} & set(arabic._MATCHING_CHARS)


@given(_TEXT)
@settings(max_examples=400, deadline=None)
def test_normalize_is_one_substitution_of_the_nfkc_form(text: str) -> None:
    assert arabic.normalize(text) == _one_substitution(text)
