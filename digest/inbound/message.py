"""Raw inbound bytes read safely: one parse, bounded MIME nesting, headers decoded whatever
their encoding, part bodies and header blocks as text, addresses out of header values."""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses

from digest.inbound.boundaries import renamed
from digest.text.controls import clean_line, clean_text

__all__ = [
    "Mail",
    "Unreadable",
    "address_of",
    "addresses_in",
    "decode_value",
    "header_blocks",
    "parse",
    "part_text",
    "raw_header",
    "raw_headers",
    "returned",
    "typed_parts",
]

# A bounce or report holds a handful of containers (report, returned message, its
# alternatives); thousands are an attack on the parser, whose time grows with their depth.
MAX_CONTAINERS = 100
MAX_HEADER_FIELDS = 1000
# What a report or bounce says is at its top (a returned message's body is skipped anyway):
# past this the bytes are not parsed, whatever size [inbound] max_message_bytes lets in.
PARSE_BYTES = 2_000_000
HEADER_CHARS = 2000  # a decoded header value is cut here (a huge header is not an error)
# These run on the lower-cased bytes: a literal start lets the engine skip ahead (re.I
# would test every byte, 3 ms over a returned 100 KB digest).
_CONTAINER = re.compile(rb"content-type:[ \t]*(?:multipart|message)/")
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]{1,64}@[^\s@<>()\[\],;:\"]{1,253}")
# `a@b`, `<a@b>`, `Name <a@b>` with a plain name, or `a@b (a comment)`: what getaddresses
# would return, at a tenth of its cost (it walks the value a character at a time).
_PLAIN = re.compile(
    r"[ \t]*(?:[^<>()\[\],;:\"@\\]*<)?"
    r"([^\s@<>()\[\],;:\"]{1,64}@[^\s@<>()\[\],;:\"]{1,253})>?[ \t]*"
    r"(?:\([^<>()\\@]*\)[ \t]*)?"
)
_ENCAPSULATED = re.compile(rb"content-type:[ \t]*message/")
# The part holding the returned message: we read its headers, never its body (often the
# whole digest, 100 KB of HTML the parser would otherwise walk line by line).
_RETURNED_PART = re.compile(
    rb"^content-type:[ \t]*(?:message/(?:rfc822|global|global-headers)|text/rfc822-headers)",
    re.M,
)
_REPORT_PART = re.compile(
    rb"^content-type:[ \t]*message/(?:global-)?(?:delivery-status|feedback-report)", re.M
)
_BLANK_LINE = re.compile(rb"\r?\n[ \t]*\r?\n")
_BYTES_PARSER = BytesParser(policy=policy.compat32)
_HEADER_PARSER = HeaderParser(policy=policy.compat32)
# message/* parts whose payload is not one encapsulated message (no nesting level).
_NOT_ENCAPSULATED = frozenset({"delivery-status", "global-delivery-status"})


class Unreadable(Exception):
    """The bytes cannot be read as a message we are willing to look into; `why` says why."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class Mail:
    """A parsed message and its raw bytes (token and Message-ID searches read the bytes),
    without the body of a returned message: only its headers are ever read."""

    msg: Message
    raw: bytes
    parts: tuple[tuple[Message, str], ...]  # every part and its content type, depth first

    def header(self, name: str, limit: int = HEADER_CHARS) -> str:
        """The first `name` field decoded to one clean line ("" when absent)."""
        return decode_value(raw_header(self.msg, name), limit)

    def has(self, name: str) -> bool:
        return raw_header(self.msg, name) is not None

    def text(self) -> str:
        """The raw bytes as Latin-1 text: every byte one character, nothing can fail."""
        return self.raw.decode("latin-1")


def parse(raw: bytes, *, max_nesting: int) -> Mail:
    """The message in `raw`; Unreadable when empty, absurdly nested or too many parts."""
    if not raw.strip():
        raise Unreadable("empty message")
    raw = raw[:PARSE_BYTES]
    lowered = raw.lower()
    if len(_CONTAINER.findall(lowered)) > MAX_CONTAINERS:
        raise Unreadable(f"more than {MAX_CONTAINERS} MIME containers")
    raw = raw[: _end_of_returned_headers(lowered, max_nesting)]
    try:
        msg = _BYTES_PARSER.parsebytes(renamed(raw, lowered[: len(raw)]))
    except (RecursionError, MemoryError):
        raise Unreadable("MIME structure too deep to parse") from None
    except Exception as exc:  # the stdlib parser is lenient; anything else is a bug there
        raise Unreadable(f"unparseable MIME: {type(exc).__name__}") from None
    if len(msg) > MAX_HEADER_FIELDS:
        raise Unreadable(f"more than {MAX_HEADER_FIELDS} header fields")
    if not len(msg) and not str(msg.get_payload()).strip():
        raise Unreadable("no header fields and no body")
    depth = nesting(msg, max_nesting)
    if depth > max_nesting:
        raise Unreadable(f"message/rfc822 nested deeper than {max_nesting} levels")
    return Mail(msg, raw, typed_parts(msg))


def _end_of_returned_headers(lowered: bytes, max_nesting: int) -> int:
    """Where the headers of the message a DSN or ARF report returns end (it comes after the
    report's own part): the bytes after are never read. The whole length when there is no
    such part, or when message/* parts are many enough to nest past the limit: those are
    parsed whole, for the nesting check to see them."""
    whole = len(lowered)
    if len(_ENCAPSULATED.findall(lowered)) > max_nesting:
        return whole
    report = _REPORT_PART.search(lowered)
    part = None if report is None else _RETURNED_PART.search(lowered, report.end())
    part_headers = None if part is None else _BLANK_LINE.search(lowered, part.end())
    if part_headers is None:
        return whole
    returned_headers = _BLANK_LINE.search(lowered, part_headers.end())
    return whole if returned_headers is None else returned_headers.end()


def nesting(msg: Message, limit: int) -> int:
    """How many message/* levels deep the parts go, counting stops past `limit`."""
    deepest = 0
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        inner = depth
        maintype, _, subtype = part.get_content_type().partition("/")
        if maintype == "message":
            if subtype in _NOT_ENCAPSULATED:
                continue
            inner = depth + 1
        stack.extend((child, inner) for child in payload if isinstance(child, Message))
    return deepest


def typed_parts(msg: Message) -> tuple[tuple[Message, str], ...]:
    """Every part with its content type (computed once: the stdlib re-reads the field)."""
    found: list[tuple[Message, str]] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        ctype = part.get_content_type()
        found.append((part, ctype))
        payload = part.get_payload()
        if isinstance(payload, list) and ctype.partition("/")[2] not in _NOT_ENCAPSULATED:
            stack.extend(reversed([child for child in payload if isinstance(child, Message)]))
    return tuple(found)


def raw_header(msg: Message, name: str) -> str | None:
    """The first `name` field as it arrived (8-bit bytes kept as surrogates), or None.

    `Message.get` would turn a field holding 8-bit bytes into an `email.header.Header`."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def raw_headers(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == wanted]


def decode_value(value: str | None, limit: int = HEADER_CHARS) -> str:
    """A header value as one clean line: 8-bit bytes read as UTF-8 (else replaced), RFC 2047
    encoded words decoded (unknown charsets replaced, never an error), cut to `limit`."""
    if not value:
        return ""
    value = value[: limit * 4]
    if not value.isascii():
        value = as_bytes(value).decode("utf-8", "replace")
    if "=?" in value:
        value = _decode_words(value)
    return clean_line(value)[:limit]


def _decode_words(value: str) -> str:
    try:
        pieces = decode_header(value)
    except Exception:  # a malformed encoded word: keep the text as it came
        return value
    out = []
    for piece, charset in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        try:
            out.append(piece.decode(charset or "ascii", "replace"))
        except LookupError:  # a charset Python does not know
            out.append(piece.decode("utf-8", "replace"))
    return "".join(out)


def as_bytes(text: str) -> bytes:
    """Text parsed from bytes back to those bytes (8-bit ones were kept as surrogates)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that did not come from a byte
        return text.encode("utf-8", "replace")


def part_text(part: Message, limit: int = 200_000) -> str:
    """A leaf part's body as text (transfer encoding undone, charset applied, bounded)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return ""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # broken base64 or quoted-printable
        data = None
    if not isinstance(data, bytes):
        data = as_bytes(str(payload))
    data = data[:limit]
    charset = part.get_content_charset() or "utf-8"
    try:
        return clean_text(data.decode(charset, "replace"))
    except (LookupError, ValueError):
        return clean_text(data.decode("utf-8", "replace"))


def header_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part.

    The parser splits a delivery-status into blocks; other report parts arrive as one
    encapsulated message whose body holds the remaining blocks, or as plain (maybe base64)
    text when a server labels or encodes them oddly: each case ends as a list of blocks."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _split_blocks(part_text(part))
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding in ("base64", "quoted-printable"):  # the parser split encoded text: undo
        text = "\n\n".join(as_string(block) for block in payload if isinstance(block, Message))
        return _split_blocks(_decoded(text, encoding))
    blocks: list[Message] = []
    for block in payload:
        if not isinstance(block, Message):
            continue
        blocks.append(block)
        rest = block.get_payload()
        if isinstance(rest, str) and rest.strip():
            blocks.extend(_split_blocks(rest))
    return blocks


def as_string(block: Message) -> str:
    """A header block back to text (its fields, then its body)."""
    fields = "".join(f"{key}: {value}\n" for key, value in block.raw_items())
    body = block.get_payload()
    return fields + ("\n" + body if isinstance(body, str) and fields else str(body or ""))


def _decoded(text: str, encoding: str) -> str:
    try:
        if encoding == "base64":
            data = base64.b64decode(re.sub(r"[^A-Za-z0-9+/=]", "", text) + "==")
        else:
            data = quopri.decodestring(as_bytes(text))
    except (ValueError, binascii.Error):
        return ""
    return clean_text(data.decode("utf-8", "replace"))


def _split_blocks(text: str) -> list[Message]:
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [_HEADER_PARSER.parsestr(chunk.strip() + "\n") for chunk in chunks[:1000] if chunk]


def parse_headers(text: str) -> Message:
    """A text/rfc822-headers part (or any header block) as a Message of its fields."""
    return _HEADER_PARSER.parsestr(text.lstrip())


def address_of(value: str) -> str:
    """The mailbox in a field such as `rfc822; <a@b>` or `Name <a@b>`, or "" when none."""
    found = addresses_in(value)
    return found[0] if found else ""


def addresses_in(value: str) -> list[str]:
    """Every plausible address in a header value, angle brackets and comments removed."""
    if "@" not in value:
        return []
    if ";" in value.split("@", 1)[0]:  # a DSN address type: `rfc822; a@b`
        value = value.split(";", 1)[1]
    plain = _PLAIN.fullmatch(value)
    if plain is not None and (value.count("<") == value.count(">")):
        return [clean_line(plain.group(1))[:254]]
    found: list[str] = []
    try:
        pairs = getaddresses([value])
    except Exception:  # getaddresses copes with nearly anything; be sure
        pairs = []
    for _name, address in pairs:
        address = address.strip().strip("<>")
        if _ADDRESS.fullmatch(address) and address not in found:
            found.append(address)
    if not found:
        found = [m.group(0) for m in _ADDRESS.finditer(value)][:20]
    return [clean_line(address)[:254] for address in found]


_RETURNED = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/global-headers",
        "message/rfc822-headers",
    }
)


def returned(mail: Mail) -> Message | None:
    """The returned or reported message (or its headers) inside a report, or None."""
    for part, ctype in mail.parts[1:]:
        if ctype not in _RETURNED:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            if payload and isinstance(payload[0], Message):
                return payload[0]
            continue
        text = part_text(part, 100_000)
        if text.strip():
            return parse_headers(text)
    return None
