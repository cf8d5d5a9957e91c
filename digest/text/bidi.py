"""Bidi safety for Arabic text: Latin and number runs become `<span dir="ltr">` islands."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

ARABIC_LETTER = re.compile(r"[\u0620-\u064A\u066E-\u06D3\u06FA-\u06FF\u0750-\u077F\u08A0-\u08C9]")

# A run starts and ends with a strong Latin letter or a digit; inside it, spaces and the
# punctuation of names, numbers and codes (S&P 500, 1,500.25, COVID-19, e-mail, 09:30) join
# strong characters.  An optional currency sign before and % after belong to the number.
_STRONG = r"A-Za-z0-9\u00C0-\u024F"
_JOIN = r" &.,:/'’_+\-–@#"
_RUN = re.compile(rf"[$€£]?[{_STRONG}]+(?:[{_JOIN}]+[{_STRONG}]+)*%?")
# Punctuation right after a Latin run would take the run's direction in clients that treat
# dir="ltr" as an embedding rather than an isolate: an RLM after the run pins it to RTL.
_RLM = "\u200f"


def has_arabic(text: str) -> bool:
    return ARABIC_LETTER.search(text) is not None


def bidi(value: object) -> Markup:
    """Escaped `value`, with each Latin/number run of Arabic text wrapped in a LTR span.

    Plain strings are always escaped (feed text can never inject markup); Markup is trusted
    and returned as is, like Jinja's own escape filter.  Text without Arabic letters needs no
    islands and is only escaped.
    """
    if isinstance(value, Markup):
        return value
    text = str(value)
    if not has_arabic(text):
        return escape(text)
    pieces: list[str] = []
    last = 0
    for match in _RUN.finditer(text):
        start, end = match.span()
        pieces += (escape(text[last:start]), '<span dir="ltr">', escape(match.group()), "</span>")
        following = text[end : end + 1]
        if following and not following.isspace() and not following.isalnum():
            pieces.append(_RLM)
        last = end
    if not pieces:
        return escape(text)
    pieces.append(escape(text[last:]))
    return Markup("".join(pieces))


def starts_rtl(text: str) -> str:
    """`text` starting with an Arabic letter or U+200F, so plain-text clients lay it out RTL."""
    if text[:1] == _RLM or ARABIC_LETTER.match(text[:1]):
        return text
    return _RLM + text


def bidi_in_ltr(value: object) -> Markup:
    """For LTR (English) emails: Arabic text becomes one RTL island, so its punctuation and
    Latin runs stay in place; other text is only escaped."""
    if isinstance(value, Markup):
        return value
    text = str(value)
    if not has_arabic(text):
        return escape(text)
    return Markup('<span dir="rtl">') + bidi(text) + Markup("</span>")
