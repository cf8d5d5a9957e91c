"""A compiled email: literal chunks and slots, personalised per recipient by a join."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import quote

from digest.render.data import Recipient, RenderedMessage, SkippedArticle, clean_text
from digest.render.slots import SlotTemplate
from digest.text.bidi import bidi, bidi_in_ltr

# Bytes kept free for each slot when checking the size budget: signed tokens are ~100
# characters; a greeting holds a name of up to 100 characters (up to 4 bytes each).
SLOT_RESERVE = {
    "greeting": 480,
    "view": 160,
    "unsubscribe": 160,
    "preferences": 160,
    "open": 160,
    "click": 160,
    "confirm": 160,
}
NAME_CHARS = 100
CLICK_RESERVE = 60  # a link's click token: `{delivery id}.{16-character tag}`
_DIGIT_LETTERS = str.maketrans("0123456789", "ghijklmnop")  # slot names are [a-z_]
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]*")


@dataclass(frozen=True)
class Greeting:
    """The two greetings of a language; `named` holds "{name}"."""

    named: str
    anonymous: str
    rtl: bool

    def text(self, name: str) -> str:
        return self.named.replace("{name}", name) if name else self.anonymous

    def html(self, name: str) -> str:
        text = self.text(name)
        return str(bidi(text) if self.rtl else bidi_in_ltr(text))


@dataclass(frozen=True)
class SlotValues:
    """One recipient's slot values for the text body and for the HTML body."""

    text: Mapping[str, str]
    html: Mapping[str, str]
    unsubscribe_url: str


@dataclass(frozen=True, eq=False)
class CompiledMessage:
    """One email compiled for a whole segment; `personalise` fills in one recipient."""

    subject: str
    preheader: str
    locale: str
    html_template: SlotTemplate
    text_template: SlotTemplate
    greeting: Greeting
    base_url: str
    article_ids: tuple[int, ...] = ()

    @property
    def html_bytes(self) -> int:
        """Worst-case size of a personalised HTML body (slots at their reserved size)."""
        return self.html_template.byte_size(_Reserve(SLOT_RESERVE))

    def slot_values(self, recipient: Recipient) -> SlotValues:
        """What fills the slots for `recipient`: tokens URL-quoted, the name escaped for HTML."""
        text = {
            "view": url_part(recipient.view_token),
            "unsubscribe": url_part(recipient.unsubscribe_token),
            "preferences": url_part(recipient.preferences_token),
            "open": url_part(recipient.open_token),
            "click": url_part(recipient.click_token),
            "confirm": url_part(recipient.confirm_token),
            **self.click_values(recipient),
        }
        name = clean_text(recipient.name, NAME_CHARS) if recipient.name else ""
        html = {**text, "greeting": self.greeting.html(name)}
        text["greeting"] = self.greeting.text(name)
        return SlotValues(text, html, f"{self.base_url}/u/{text['unsubscribe']}")

    def click_values(self, recipient: Recipient) -> dict[str, str]:
        """The click token of each tracked link, by slot (a message without links: none)."""
        return {}

    def personalise(self, recipient: Recipient) -> RenderedMessage:
        """The message for `recipient` (the dispatcher fills pre-encoded bodies instead)."""
        values = self.slot_values(recipient)
        return RenderedMessage(
            subject=self.subject,
            preheader=self.preheader,
            html=self.html_template.fill(values.html),
            text=self.text_template.fill(values.text),
            locale=self.locale,
            article_ids=self.article_ids,
            unsubscribe_url=values.unsubscribe_url,
        )


@dataclass(frozen=True, eq=False)
class CompiledDigest(CompiledMessage):
    """A compiled digest: which articles made it, which were dropped or skipped, and why."""

    dropped_ids: tuple[int, ...] = ()
    skipped: tuple[SkippedArticle, ...] = ()
    links: Mapping[str, str] = field(default_factory=dict)  # click-token suffix -> URL

    def click_values(self, recipient: Recipient) -> dict[str, str]:
        sign = recipient.click_tokens
        if sign is None:  # a preview: the same placeholder everywhere
            token = url_part(recipient.click_token)
            return {slot: token for slot, _ in self._click_slots}
        return {slot: sign(link) for slot, link in self._click_slots}

    @cached_property
    def _click_slots(self) -> tuple[tuple[str, str], ...]:
        return tuple((click_slot(suffix), suffix.lstrip(".")) for suffix in self.links)


def click_slot(suffix: str) -> str:
    """The slot of one tracked link's click token (its token is signed over the link)."""
    digest = hashlib.blake2s(suffix.encode(), digest_size=8).hexdigest()
    return "click_" + digest.translate(_DIGIT_LETTERS)


class _Reserve(dict[str, int]):
    """`SLOT_RESERVE`, and CLICK_RESERVE for every link's click slot."""

    def __missing__(self, name: str) -> int:
        if name.startswith("click_"):
            return CLICK_RESERVE
        raise KeyError(name)


def default_link_suffix(url: str) -> str:
    """A stable per-link suffix of the click token: `.` and a short hash of the URL."""
    return "." + hashlib.blake2s(url.encode(), digest_size=6).hexdigest()


def url_part(value: str) -> str:
    """`value` safe inside a URL path (signed tokens already are: then it is returned as is)."""
    return value if _URL_SAFE.fullmatch(value) else quote(value, safe="")
