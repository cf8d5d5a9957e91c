"""MIME bytes of digest emails: shared parts encoded once per segment, filled in per subscriber.

`MessageTemplate` pre-encodes everything a segment's messages share (From, Subject, List-Id,
Feedback-ID, MIME structure); `MessageTemplate.build` only adds To, Date, Message-ID,
List-Unsubscribe and the two base64 bodies, then signs with DKIM when a key is configured
(digest/send/dkim.py: the shared headers are canonicalised once per segment too).
No `email.message.EmailMessage` is built per subscriber (see docs/architecture.md).
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

from digest.config import SenderSettings
from digest.errors import InvalidInput
from digest.render.slots import SlotTemplate
from digest.send.addresses import ascii_domain
from digest.send.bodies import BodyParts, FilledBody
from digest.send.bodies import canonical_utf8 as canonical_utf8  # its old home
from digest.send.dkim import DkimSigner as DkimSigner  # re-exported: the dispatcher's import

ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"

# The signed headers `build` writes per message; the others are shared by the segment.
_PER_MESSAGE = ("date", "to", "message-id", "list-unsubscribe")
_CRLF = "\r\n"
_FOLD = 78  # RFC 5322 §2.1.1: lines SHOULD be <= 78 characters...
_HARD_LIMIT = 998  # ...and MUST be <= 998.
# 39 UTF-8 bytes -> 52 base64 chars -> a 64-char encoded-word: "Subject: " + word stays <= 78.
_WORD_BYTES = 39
# Every C0 control and DEL goes: CR/LF would inject headers, the others have no business there.
_CONTROLS = {code: None for code in (*range(0x20), 0x7F)} | {0x09: 0x20}
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[A-Za-z0-9.-]+")
_LIST_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_TOKEN = re.compile(r"[^A-Za-z0-9._-]+")
# Characters left as they are in header URLs; anything else (<, >, space, ", non-ASCII) is
# percent-encoded so the URL stays inside its angle brackets.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def clean_header_value(value: str) -> str:
    """Remove CR, LF and other control characters, collapse runs of white space.

    Every header value that comes from data (names, subjects, list names, URLs) passes here
    before it is encoded, so "Evil\\r\\nBcc: x@y" cannot start a header of its own.
    """
    return " ".join(value.translate(_CONTROLS).split())


def make_message_id(domain: str, prefix: str = "") -> str:
    """A new globally unique Message-ID on `domain`, angle brackets included; `prefix` (a
    delivery's VERP token) starts it, so a bounce's returned headers name the delivery."""
    unique = f"{prefix}.{uuid.uuid4().hex}" if prefix else uuid.uuid4().hex
    return f"<{unique}@{clean_header_value(domain)}>"


def _check_address(address: str, what: str, *, utf8_local: bool = False) -> str:
    """The address as headers carry it: its domain in punycode (IDNA); a non-ASCII local
    part only where `utf8_local` (a recipient: the message then needs SMTPUTF8)."""
    cleaned = clean_header_value(address)
    local, _, domain = cleaned.rpartition("@")
    converted = f"{local}@{ascii_domain(domain)}" if domain else cleaned
    if not (local.isascii() or utf8_local) or not _ADDRESS.fullmatch(converted):
        raise InvalidInput(f"{what} {address!r} is not a usable email address")
    return converted


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 'B' encoded-words of at most 39 UTF-8 bytes, never splitting a character.

    Words break after a space where possible: RFC 2047 readers join adjacent encoded-words
    exactly, but some (CPython's display-name parser) put a space between them, which is
    harmless after a space and wrong inside a word.
    """
    data = text.encode("utf-8")
    words: list[str] = []
    start, end = 0, len(data)
    while start < end:
        stop = min(start + _WORD_BYTES, end)
        if stop < end:
            space = data.rfind(b" ", start + 8, stop)
            if space > 0:
                stop = space + 1
        while stop < end and (data[stop] & 0xC0) == 0x80:  # continuation byte: step back
            stop -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:stop]).decode("ascii") + "?=")
        start = stop
    return words


def _text_tokens(text: str) -> list[str]:
    """Tokens of an unstructured value (Subject): ASCII words as is, anything else encoded."""
    if text.isascii() and "=?" not in text:
        words = text.split(" ")
        if all(len(word) < _HARD_LIMIT - 20 for word in words):
            return words
    return _encoded_words(text)


def _phrase_tokens(name: str) -> list[str]:
    """Tokens of a display name: atoms, a quoted string, or encoded-words."""
    if not name:
        return []
    if not name.isascii():
        return _encoded_words(name)
    if "=?" not in name and _ATOM_PHRASE.fullmatch(name):
        return name.split(" ")
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return [quoted] if len(quoted) < _FOLD - 10 else _encoded_words(name)


def _fold(name: str, tokens: Iterable[str]) -> bytes:
    """`Name: tok tok ...` with CRLF + space folds so lines stay <= 78 chars when possible."""
    lines: list[str] = []
    line = name + ":"
    for token in tokens:
        if len(line) + 1 + len(token) > _FOLD and line != name + ":":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    if any(len(part) > _HARD_LIMIT for part in lines):
        raise InvalidInput(f"the {name} header has an item longer than {_HARD_LIMIT} characters")
    # UTF-8 only for a non-ASCII local part in To (RFC 6532); everything else is ASCII here.
    return (_CRLF.join(lines) + _CRLF).encode("utf-8")


def _address_header(name: str, display: str, address: str) -> bytes:
    phrase = _phrase_tokens(clean_header_value(display))
    return _fold(name, [*phrase, f"<{address}>"] if phrase else [address])


@functools.lru_cache(maxsize=256)
def _lines_of_76(count: int) -> struct.Struct:
    return struct.Struct("76s" * count)


class EncodedSlots:
    """A `SlotTemplate` already in `canonical_utf8` form, split once at its slots.

    `fill` gives the same bytes as `canonical_utf8(template.fill(values))` with one bytes join:
    encoding a ~45 KB mostly-Arabic body and fixing its line ends for every message cost
    about a third of personalising and building it (send bench). Values holding CR or LF, or
    a template with a lone CR right before a slot (an empty value would make it a CRLF),
    take the slow path, which is always exact.
    """

    __slots__ = ("_exact", "_groups", "_parts", "_template")

    def __init__(self, template: SlotTemplate) -> None:
        nonce = secrets.token_hex(8)  # text from a feed cannot forge a marker
        marked = template.fill({name: f"@@{nonce}.{name}@@" for name in template.names})
        data = canonical_utf8(marked)
        pattern = re.compile(rb"@@" + nonce.encode("ascii") + rb"\.([a-z_]+)@@")
        parts: list[bytes] = []
        groups: dict[str, list[int]] = {}
        last = 0
        exact = True
        for match in pattern.finditer(data):
            exact = exact and data[match.start() - 1 : match.start()] != b"\r"
            parts.append(data[last : match.start()])
            groups.setdefault(match.group(1).decode("ascii"), []).append(len(parts))
            parts.append(b"")
            last = match.end()
        parts.append(data[last:])
        self._template = template
        self._parts = parts
        self._groups = tuple((name, tuple(indexes)) for name, indexes in groups.items())
        self._exact = exact

    def fill(self, values: Mapping[str, str]) -> bytes:
        if not self._exact or any("\r" in v or "\n" in v for v in values.values()):
            return canonical_utf8(self._template.fill(values))
        parts = self._parts.copy()
        for name, indexes in self._groups:
            value = values[name].encode("utf-8")
            for index in indexes:
                parts[index] = value
        return b"".join(parts)


def _body(text: str | bytes) -> bytes:
    """A text part in base64, 76-char CRLF-ended lines; bytes are taken as `canonical_utf8`.

    Same bytes as `base64.encodebytes` with CRLF, but ~40% faster: one C-speed b64encode of
    the whole body, then one cached `struct` unpack cuts it into lines (encodebytes loops in
    Python, one call per 57-byte line).
    """
    data = canonical_utf8(text) if isinstance(text, str) else text
    encoded = base64.b64encode(data)
    full = len(encoded) // 76
    rest = encoded[full * 76 :]
    lines = list(_lines_of_76(full).unpack_from(encoded)) if full else []
    if rest:
        lines.append(rest)
    lines.append(b"")
    return b"\r\n".join(lines)


def _msg_id(value: str) -> str:
    cleaned = clean_header_value(value).strip("<>")
    if not cleaned.isascii() or not _ADDRESS.fullmatch(cleaned):
        raise InvalidInput(f"Message-ID {value!r} must look like <unique@domain>")
    return f"<{cleaned}>"


def _url(url: str) -> str:
    return quote(clean_header_value(url), safe=_URL_SAFE)


@dataclass(frozen=True)
class SharedHeaders:
    """What every message of a segment (or a one-off) shares, encoded once by `MessageTemplate`.

    `list_name` and `list_slug` make `List-Id: <list name> <slug.list_id_domain>`;
    `campaign` and `stream` make `Feedback-ID: campaign:slug:stream:SenderId` (keep them
    stable per mail stream: an edition or list id, never a per-message value).
    """

    list_name: str
    list_slug: str
    subject: str
    locale: str = "ar"
    campaign: str = "digest"
    stream: str = "digest"


@dataclass(frozen=True, slots=True)
class MessageParts:
    """One subscriber's part of a message, as `MessageTemplate.build` takes it.

    `unsubscribe_url` is the one-click HTTPS URL (required by Gmail); `unsubscribe_mailto`
    (a full `mailto:…?subject=TOKEN` URI) is optional. `message_id` defaults to a new one
    on sender.list_id_domain; `date` defaults to now (a naive datetime is taken as UTC).
    `html` and `text` are text, or bytes already in `canonical_utf8` form (`EncodedSlots`).
    """

    to_address: str
    to_name: str
    html: str | bytes
    text: str | bytes
    unsubscribe_url: str
    unsubscribe_mailto: str = ""
    message_id: str | None = None
    date: datetime | None = None


class MessageTemplate:
    """The shared part of one segment's messages, encoded once; `build` adds the rest."""

    def __init__(
        self, sender: SenderSettings, shared: SharedHeaders, signer: DkimSigner | None = None
    ) -> None:
        slug = clean_header_value(shared.list_slug)
        if not _LIST_LABEL.fullmatch(slug):
            raise InvalidInput(f"list slug {shared.list_slug!r} cannot be used in List-Id")
        language = _TOKEN.sub("", clean_header_value(shared.locale)) or "ar"
        self.signer = signer
        self.domain = clean_header_value(sender.list_id_domain)
        from_address = _check_address(sender.from_address, "sender.from_address")
        feedback = ":".join(
            _TOKEN.sub("-", clean_header_value(part)).strip("-") or "none"
            for part in (shared.campaign, slug, shared.stream, sender.feedback_id)
        )
        list_id = f"<{slug}.{self.domain}>"
        list_phrase = _phrase_tokens(clean_header_value(shared.list_name))
        self._boundary = "=_digest_" + uuid.uuid4().hex
        head = [_address_header("From", sender.from_name, from_address)]
        self._subject = _fold("Subject", _text_tokens(clean_header_value(shared.subject)))
        if sender.reply_to:
            reply_to = _check_address(sender.reply_to, "sender.reply_to")
            head.append(_fold("Reply-To", [reply_to]))
        head.append(_fold("List-Id", [*list_phrase, list_id]))
        self._head = b"".join(head)
        multipart = f'Content-Type: multipart/alternative;\r\n boundary="{self._boundary}"\r\n'
        self._tail = b"".join(
            [
                ONE_CLICK,
                _fold("Feedback-ID", [feedback]),
                b"MIME-Version: 1.0\r\n",
                f"Content-Language: {language}\r\n".encode("ascii"),
                multipart.encode("ascii"),
            ]
        )
        self._body_head = self._part_head("plain", "base64")
        # What DKIM signs of the shared headers is canonicalised here, once per segment.
        self._signing = (
            None
            if signer is None
            else signer.segment(self._head + self._subject + self._tail, _PER_MESSAGE)
        )
        self._between = b"".join([b"\r\n", self._part_head("html", "base64")])
        self._end = f"\r\n--{self._boundary}--\r\n".encode("ascii")

    def _part_head(self, subtype: str, encoding: str) -> bytes:
        return (
            f"--{self._boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
        ).encode("ascii")

    def eight_bit_parts(self) -> BodyParts:
        """The fixed bytes around 8bit text parts (bodies.EightBitBody): the plain part's
        head, its end and the HTML part's head, the closing boundary."""
        between = b"".join([b"\r\n", self._part_head("html", "8bit")])
        return BodyParts(self._part_head("plain", "8bit"), between, self._end)

    def build(self, parts: MessageParts) -> bytes:
        """The complete message for one subscriber, CRLF line ends, DKIM-signed if configured;
        its text parts in base64 (no line of it starts with a dot: it is its SMTP form too).

        Raises InvalidInput for an address or URL that cannot be put in a header.
        """
        headers = self._headers(parts)
        body = self._base64_body(parts)
        signature = b"" if self._signing is None else self._signing.sign(headers, body)
        return self._assemble(signature, headers, body)

    async def build_off_loop(
        self, parts: MessageParts, filled: FilledBody | None = None
    ) -> tuple[bytes, bytes]:
        """(the message, its SMTP form): `build`, or with `filled` (a body made by this
        template's `eight_bit_parts`; `parts.html` and `parts.text` are then not used) in
        8bit; the DKIM signatures made outside the event loop where the keys allow it."""
        headers = self._headers(parts)
        body = self._base64_body(parts) if filled is None else filled.data
        canonical = None if filled is None else filled.canonical
        signature = (
            b""
            if self._signing is None
            else await self._signing.sign_off_loop(headers, body, canonical)
        )
        data = self._assemble(signature, headers, body)
        if filled is None or filled.wire is filled.data:
            return data, data
        return data, data[: len(data) - len(body)] + filled.wire

    def _base64_body(self, parts: MessageParts) -> bytes:
        return b"".join(
            [self._body_head, _body(parts.text), self._between, _body(parts.html), self._end]
        )

    def _headers(self, parts: MessageParts) -> tuple[bytes, bytes, bytes, bytes]:
        """Date, To, Message-ID and List-Unsubscribe of one message (what DKIM signs of it)."""
        address = _check_address(parts.to_address, "recipient", utf8_local=True)
        given = parts.message_id
        message_id = make_message_id(self.domain) if given is None else _msg_id(given)
        when = datetime.now(UTC) if parts.date is None else parts.date
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if not clean_header_value(parts.unsubscribe_url):
            raise InvalidInput("a List-Unsubscribe URL is required (RFC 8058 one-click)")
        unsubscribe = [f"<{_url(parts.unsubscribe_url)}>"]
        if parts.unsubscribe_mailto:
            unsubscribe = [unsubscribe[0] + ",", f"<{_url(parts.unsubscribe_mailto)}>"]
        return (
            f"Date: {format_datetime(when)}\r\n".encode("ascii"),
            _address_header("To", parts.to_name, address),
            f"Message-ID: {message_id}\r\n".encode("ascii"),
            _fold("List-Unsubscribe", unsubscribe),
        )

    def _assemble(
        self, signature: bytes, headers: tuple[bytes, bytes, bytes, bytes], body: bytes
    ) -> bytes:
        """The message: the signature on top of the very header bytes it signs."""
        date, to, message_id, list_unsubscribe = headers
        return b"".join(
            [
                signature,
                date,
                self._head,
                to,
                self._subject,
                message_id,
                list_unsubscribe,
                self._tail,
                b"\r\n",
                body,
            ]
        )
