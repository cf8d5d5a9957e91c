"""MIME bytes of a digest email, checked line by line against docs/deliverability.md."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import DkimSettings, SenderSettings
from digest.errors import InvalidInput
from digest.send.dkim import DKIM_HEADERS, DkimSigner
from digest.send.mime import (
    MessageParts,
    MessageTemplate,
    SharedHeaders,
    make_message_id,
)

SUBJECT = "نشرتك اليومية: اجتماع وزراء الخارجية العرب في القاهرة لبحث الأوضاع الإقليمية"
HTML = '<html dir="rtl" lang="ar"><body><p>مرحبا يا علي</p>\n<a href="https://x/u/T">إلغاء</a></body></html>\n'
TEXT = "مرحبا يا علي\n\nإلغاء الاشتراك: https://news.example.org/u/TOKEN\n"
UNSUBSCRIBE = "https://news.example.org/u/TOKEN"
MAILTO = "mailto:unsubscribe@news.example.org?subject=TOKEN"
DATE = datetime(2025, 5, 1, 4, 0, tzinfo=UTC)


def _template(
    sender: SenderSettings | None = None, signer: DkimSigner | None = None, **overrides: object
) -> MessageTemplate:
    options: dict[str, object] = {
        "list_name": "Daily Digest",
        "list_slug": "daily",
        "subject": SUBJECT,
        "locale": "ar",
        "campaign": "2025-05-01",
    }
    options.update(overrides)
    shared = SharedHeaders(**options)  # type: ignore[arg-type]
    return MessageTemplate(sender or SenderSettings(), shared, signer)


def _build(template: MessageTemplate, **overrides: object) -> bytes:
    options: dict[str, object] = {
        "to_address": "ali@example.com",
        "to_name": "علي بن أحمد",
        "html": HTML,
        "text": TEXT,
        "unsubscribe_url": UNSUBSCRIBE,
        "unsubscribe_mailto": MAILTO,
        "message_id": "<abc123@news.example.org>",
        "date": DATE,
    }
    options.update(overrides)
    return template.build(MessageParts(**options))  # type: ignore[arg-type]


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _head(data: bytes) -> bytes:
    return data[: data.index(b"\r\n\r\n") + 2]


def test_every_message_header_is_there_exactly_once() -> None:
    message = _parse(_build(_template()))
    for name in ("Date", "From", "To", "Subject", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert len(message.get_all(name) or []) == 1, name
    for name in ("List-Unsubscribe-Post", "Feedback-ID", "MIME-Version", "Content-Language"):
        assert len(message.get_all(name) or []) == 1, name
    assert message["Subject"] == SUBJECT
    assert message["Date"].datetime == DATE
    assert message["Message-ID"] == "<abc123@news.example.org>"
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == "ar"


def test_from_and_to_carry_encoded_arabic_names() -> None:
    data = _build(_template())
    message = _parse(data)
    sender = message["From"].addresses
    assert len(sender) == 1
    assert (sender[0].display_name, sender[0].addr_spec) == (
        "النشرة اليومية",
        "digest@news.example.org",
    )
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("علي بن أحمد", "ali@example.com")
    assert _head(data).isascii()  # non-ASCII only through RFC 2047 encoded-words
    assert b"=?utf-8?b?" in _head(data)


def test_list_headers_are_byte_exact() -> None:
    data = _build(_template())
    head = _head(data)
    message = _parse(data)
    assert message["List-Id"] == "Daily Digest <daily.news.example.org>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>, <{MAILTO}>"
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head


def test_list_unsubscribe_without_mailto_keeps_the_https_url() -> None:
    message = _parse(_build(_template(), unsubscribe_mailto=""))
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"


def test_feedback_id_has_four_parts_and_a_stable_sender_id() -> None:
    message = _parse(_build(_template()))
    parts = str(message["Feedback-ID"]).split(":")
    assert parts == ["2025-05-01", "daily", "digest", "newsdigest"]
    sender_id = parts[3]
    assert 5 <= len(sender_id) <= 15
    other = _parse(_build(_template(), message_id=None))
    assert other["Feedback-ID"] == message["Feedback-ID"]  # never a per-message value


def test_text_part_first_html_last_both_utf8_base64() -> None:
    data = _build(_template())
    message = _parse(data)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
    # Text is sent in canonical CRLF form (RFC 2046 §4.1.1); the words are the inputs'.
    assert parts[0].get_content().replace("\r\n", "\n") == TEXT
    assert parts[1].get_content().replace("\r\n", "\n") == HTML


def test_body_lines_are_76_char_base64_and_every_line_ends_crlf() -> None:
    html = "<p>" + "مقال طويل " * 4000 + "</p>"
    data = _build(_template(), html=html)
    assert b"\n" not in data.replace(b"\r\n", b"")
    body_lines = data[data.index(b"\r\n\r\n") :].split(b"\r\n")
    encoded = [line for line in body_lines if re.fullmatch(rb"[A-Za-z0-9+/=]{60,}", line)]
    assert encoded and max(len(line) for line in encoded) == 76
    assert all(len(line) <= 76 for line in body_lines)
    parts = list(_parse(data).iter_parts())
    assert parts[1].get_content() == html


def test_header_lines_are_folded() -> None:
    long_name = "محمد عبد الرحمن بن عبد العزيز آل سعود الفلاني من مدينة الرياض"
    data = _build(
        _template(list_name="النشرة الإخبارية اليومية من أخبار المثال"), to_name=long_name
    )
    lines = _head(data).split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    message = _parse(data)
    # RFC 2047 §6.2: white space between adjacent encoded-words is dropped when decoding...
    raw_to = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    phrase = str(raw_to).rsplit("<", 1)[0]
    assert str(make_header(decode_header(phrase))).strip() == long_name
    # ...which CPython's display-name parser does not do (it adds a space): words break at
    # spaces, so even there no word is cut in two.
    assert " ".join(message["To"].addresses[0].display_name.split()) == long_name
    assert message["List-Id"] == "النشرة الإخبارية اليومية من أخبار المثال <daily.news.example.org>"


def test_long_ascii_subject_folds_at_spaces() -> None:
    subject = "Your daily digest: " + " ".join(["ministers meet in Cairo"] * 8)
    data = _build(_template(subject=subject, locale="en"))
    assert max(len(line) for line in _head(data).split(b"\r\n")) <= 78
    message = _parse(data)
    assert message["Subject"] == subject
    assert message["Content-Language"] == "en"
    assert b"Subject: Your daily digest:" in data  # plain ASCII stays readable


def test_crlf_in_data_cannot_inject_headers() -> None:
    # A subscriber named "Evil\r\nBcc: x@y" must not add a Bcc header, nor may a subject,
    # a list name or an unsubscribe URL.
    data = _build(
        _template(subject="Hi\r\nBcc: a@b", list_name="List\nBcc: c@d"),
        to_name="Evil\r\nBcc: x@y",
        unsubscribe_url="https://news.example.org/u/T\r\nBcc: e@f",
    )
    message = _parse(data)
    assert message.get_all("Bcc") is None
    assert not re.search(rb"^Bcc:", data, re.MULTILINE | re.IGNORECASE)
    assert message["To"].addresses[0].addr_spec == "ali@example.com"
    assert message["To"].addresses[0].display_name == "EvilBcc: x@y"
    assert message["Subject"] == "HiBcc: a@b"
    assert len(message.get_all("List-Unsubscribe") or []) == 1


def test_unsubscribe_urls_stay_inside_their_angle_brackets() -> None:
    url = 'https://news.example.org/u/T> <https://evil.example/ "x"/إلغاء'
    message = _parse(_build(_template(), unsubscribe_url=url, unsubscribe_mailto=""))
    value = str(message["List-Unsubscribe"])
    assert value.startswith("<https://news.example.org/u/T%3E%20%3Chttps://evil.example/%20")
    assert value.count("<") == 1 and value.count(">") == 1 and value.isascii()
    with pytest.raises(InvalidInput, match="List-Unsubscribe"):
        _build(_template(), unsubscribe_url=" \r\n")


def test_ascii_names_with_specials_are_quoted() -> None:
    message = _parse(_build(_template(), to_name='Smith, "Jo" J.'))
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ('Smith, "Jo" J.', "ali@example.com")


def test_no_name_gives_a_bare_address() -> None:
    message = _parse(_build(_template(), to_name=""))
    assert message["To"] == "ali@example.com"


def test_reply_to_only_when_configured() -> None:
    assert _parse(_build(_template()))["Reply-To"] is None
    sender = SenderSettings(reply_to="editors@news.example.org")
    message = _parse(_build(_template(sender)))
    assert message["Reply-To"] == "editors@news.example.org"


def test_addresses_and_slugs_that_cannot_go_in_a_header_are_refused() -> None:
    template = _template()
    with pytest.raises(InvalidInput):
        _build(template, to_address="ali@example.com>, eve@evil.example")
    with pytest.raises(InvalidInput):  # no punycode form: a label past 63 octets
        _build(template, to_address="ali@" + "ب" * 80 + ".com")
    with pytest.raises(InvalidInput):  # a From address has to be ASCII (no SMTPUTF8 there)
        _template(SenderSettings.model_construct(from_address="عل@example.com"))
    with pytest.raises(InvalidInput):
        _template(list_slug="daily news")


def test_an_internationalised_recipient_goes_in_punycode_or_as_utf8() -> None:
    # The domain in punycode (every relay can take it); a non-ASCII local part in UTF-8
    # (RFC 6532: the message then goes with SMTPUTF8, or not at all).
    template = _template()
    idn = _build(template, to_address="user@bücher.de", to_name="")
    assert b"\r\nTo: user@xn--bcher-kva.de\r\n" in idn
    utf8 = _build(template, to_address="عل@مثال.السعودية", to_name="")
    assert "\r\nTo: عل@xn--mgbh0fb.xn--mgberp4a5d4ar\r\n".encode() in utf8


def test_make_message_id_is_unique_on_the_given_domain() -> None:
    ids = {make_message_id("news.example.org") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"<[0-9a-f]{32}@news\.example\.org>", one) for one in ids)
    message = _parse(_build(_template(), message_id=None, date=None))
    assert str(message["Message-ID"]).endswith("@news.example.org>")
    assert message["Date"].datetime.tzinfo is not None


def _key_pair(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers(tmp_path: Path) -> None:
    key_path, record = _key_pair(tmp_path)
    settings = DkimSettings(selector="mail2025", private_key_path=str(key_path))
    signer = DkimSigner.from_settings(settings, SenderSettings())
    assert signer is not None and signer.domain == "news.example.org"
    asked: list[bytes] = []

    def dns(name: bytes, timeout: float = 5) -> bytes:
        asked.append(name)
        return record

    data = _build(_template(signer=signer))
    assert data.startswith(b"DKIM-Signature: ")  # signed last: the signature is on top
    assert dkim.verify(data, dnsfunc=dns)
    assert asked == [b"mail2025._domainkey.news.example.org."]
    signature = str(_parse(data)["DKIM-Signature"])
    signed = re.search(r"\bh=([^;]+)", signature)
    assert signed is not None
    names = {name.strip().lower() for name in signed.group(1).split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "feedback-id", "list-id"} <= names
    assert set(DKIM_HEADERS) <= names
    tampered = data.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_signs_reply_to_when_there_is_one(tmp_path: Path) -> None:
    key_path, record = _key_pair(tmp_path)
    sender = SenderSettings(reply_to="editors@news.example.org")
    signer = DkimSigner.from_settings(
        DkimSettings(selector="s1", domain="mail.example.org", private_key_path=str(key_path)),
        sender,
    )
    data = _build(_template(sender, signer=signer))
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record)
    assert b"d=mail.example.org" in data[:1000]
    assert "reply-to" in str(_parse(data)["DKIM-Signature"])
