"""Arabic normalisation for matching: one spelling per word, so categories and keywords meet.

Everything here is for *comparing* text; stored text is never altered.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Tashkeel (fathatan … sukun, maddah/hamza marks, superscript alef), Quranic annotation
# marks, and tatweel (the stretching bar ـ).
_DIACRITICS = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)

_LETTERS = str.maketrans(
    {
        "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ٲ": "ا", "ٳ": "ا",  # alef forms
        "ى": "ي", "ی": "ي",  # alef maqsura, Persian yeh
        "ة": "ه",  # taa marbuta
        "ؤ": "و", "ئ": "ي",  # hamza on its seat, often written without it
        "ک": "ك",  # Persian kaf
    }
)  # fmt: skip

_DIGITS = str.maketrans(
    {
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic ٠-٩
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Extended (Persian) ۰-۹
        "٫": ".",  # Arabic decimal separator
        "٬": ",",  # Arabic thousands separator
        "٪": "%",
    }
)

# Everything `normalize` changes after NFKC, in one table (one pass over the text).
_MATCHING = {
    **_LETTERS,
    **_DIGITS,
    **{c: None for c in range(0x0610, 0x061B)},
    **{c: None for c in range(0x064B, 0x0660)},
    0x0670: None,
    **{c: None for c in range(0x06D6, 0x06DD)},
    **{c: None for c in range(0x06DF, 0x06E9)},
    **{c: None for c in range(0x06EA, 0x06EE)},
    0x0640: None,
}

_MATCHING_CHARS = {chr(c): "" if to is None else str(to) for c, to in _MATCHING.items()}
# Applied as: the dropped characters in one regex pass with an empty replacement (in C), then
# str.replace for each replaced character present. The same as one simultaneous substitution
# since no replacement is itself a character to change; ~2.5x faster than a regex calling
# back per match, and far faster than str.translate (a dict lookup per character).
_DROPPED = re.compile(
    "[" + "".join(re.escape(c) for c, to in _MATCHING_CHARS.items() if not to) + "]"
)
_REPLACED = tuple((c, to) for c, to in _MATCHING_CHARS.items() if to)

# A word: letters and digits, joined across "." "," "&" "'" inside it (1.5, 2,000, S&P).
_TOKEN = re.compile(r"[^\W_]+(?:[.,&'’][^\W_]+)*")

_CONJUNCTIONS = frozenset("وف")
_PREPOSITIONS = frozenset("بكل")
_ARTICLE = "ال"
_PREFIX_STARTS = _CONJUNCTIONS | _PREPOSITIONS | {_ARTICLE[0]}
# A stripped word must keep this many letters: "له" is not "الله" without its article.
MIN_STEM = 3


def remove_diacritics(text: str) -> str:
    """Drop tashkeel and tatweel: "الْعَرَبِيَّـة" -> "العربية"."""
    return _DIACRITICS.sub("", text)


def unify_letters(text: str) -> str:
    """One form per letter: أ إ آ ٱ -> ا, ى -> ي, ة -> ه, ؤ -> و, ئ -> ي."""
    return text.translate(_LETTERS)


def ascii_digits(text: str) -> str:
    """Arabic-Indic digits (and ٫ ٬ ٪) to ASCII: "١٫٥٪" -> "1.5%"."""
    return text.translate(_DIGITS)


def normalize(text: str) -> str:
    """The matching form of `text`: compatibility forms folded, no diacritics, unified
    letters, ASCII digits, case-folded Latin."""
    folded = _DROPPED.sub("", unicodedata.normalize("NFKC", text))
    for char, replacement in _REPLACED:
        if char in folded:
            folded = folded.replace(char, replacement)
    return folded.casefold()


def tokens(text: str) -> list[str]:
    """The normalised words of `text`, punctuation and quotes («») dropped."""
    # Exactly `_TOKEN.findall(normalize(text))`, ~3x faster: a token never spans whitespace
    # (not a word character), and most words are letters only (`isalnum` is `[^\W_]+`).
    found: list[str] = []
    for piece in normalize(text).split():
        if piece.isalnum():
            found.append(piece)
        else:
            found += _TOKEN.findall(piece)
    return found


@lru_cache(maxsize=262_144)
def word_forms(token: str) -> frozenset[str]:
    """`token` and what it may be without its clitic prefixes (و ف, then ب ك ل, then ال).

    "والاقتصاد" -> {"والاقتصاد", "الاقتصاد", "اقتصاد"}; "للحكومه" -> {…, "حكومه"}.
    `token` must already be normalised.
    """
    if len(token) <= MIN_STEM or token[0] not in _PREFIX_STARTS:
        return frozenset((token,))  # most words: nothing to strip
    stems = [(token, "")]
    if token[0] in _CONJUNCTIONS:
        stems.append((token[1:], ""))
    stems += [(stem[1:], stem[0]) for stem, _ in list(stems) if stem[:1] in _PREPOSITIONS]
    forms = {token}
    for stem, preposition in stems:
        if len(stem) >= MIN_STEM:
            forms.add(stem)
        if stem.startswith(_ARTICLE):
            bare = stem[len(_ARTICLE) :]
        elif preposition == "ل" and stem[:1] == "ل":
            bare = stem[1:]  # لل = ل + ال, the alef dropped in writing
        else:
            continue
        if len(bare) >= MIN_STEM:
            forms.add(bare)
    return frozenset(forms)


def base_form(token: str) -> str:
    """A keyword word as it is matched: without its article ("الاقتصاد" -> "اقتصاد").

    Only ال is removed: a keyword's own first letter may be و ف ب ك ل ("وزارة", "بنك").
    """
    if token.startswith(_ARTICLE) and len(token) - len(_ARTICLE) >= MIN_STEM:
        return token[len(_ARTICLE) :]
    return token


def phrase_key(text: str) -> tuple[str, ...]:
    """The words of a keyword, category or topic name in their matched form."""
    return tuple(base_form(t) for t in tokens(text))


def is_mostly_arabic(text: str) -> bool:
    """True when Arabic letters outnumber Latin ones (a language guess for untagged items)."""
    arabic = sum(1 for c in text if "\u0600" <= c <= "\u06ff")
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    return arabic > 0 and arabic >= latin
