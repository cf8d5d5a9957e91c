"""What every digest must carry, checked on each compiled segment before anything is sent:
the unsubscribe link (RFC 8058's one-click page, CAN-SPAM, Gmail's and Yahoo's bulk-sender
rules) and the publisher's postal address (CAN-SPAM), in the HTML and in the plain text.

`digest templates check` finds a template that drops them on sample data; this catches
what a sample cannot, such as a publisher's template that shows the footer only under a
condition the sample happened to meet."""

from __future__ import annotations

import html
import re
from pathlib import Path

from digest.errors import TemplateError
from digest.render.compiled import CompiledMessage

__all__ = ["require_way_out"]

# Marks and spaces the templates' bidi filters may put inside or around the address.
_INVISIBLE = re.compile(r"[\s\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_TAG = re.compile(r"<[^>]*>")  # the bidi filter wraps digits in <span dir="ltr">


def require_way_out(compiled: CompiledMessage, postal_address: str, folder: Path | None) -> None:
    """TemplateError naming the part and the templates when the unsubscribe link or the
    postal address (when one is set) is missing from the HTML or the text."""
    address = _squashed(postal_address)
    for part, template in (("HTML", compiled.html_template), ("text", compiled.text_template)):
        missing = []
        if "unsubscribe" not in template.names:
            missing.append("the unsubscribe link")
        if address and address not in _visible(template.fill(_EMPTY), part == "HTML"):
            missing.append("the postal address ([brand] postal_address)")
        if missing:
            where = f"render.templates_dir ({folder})" if folder else "the built-in templates"
            raise TemplateError(
                f"the {compiled.locale} digest's {part} part lacks {' and '.join(missing)}: "
                f"email/digest.{'mjml' if part == 'HTML' else 'txt'}.j2 and the layout and "
                f"partials it includes, in {where}; nothing is sent without them"
            )


class _Empty(dict[str, str]):
    """Every slot empty: only the literal text is searched."""

    def __missing__(self, key: str) -> str:
        return ""


_EMPTY = _Empty()


def _squashed(text: str) -> str:
    return _INVISIBLE.sub("", text)


def _visible(text: str, markup: bool) -> str:
    """What a reader sees of `text`, without spaces and direction marks."""
    return _squashed(html.unescape(_TAG.sub("", text)) if markup else text)
