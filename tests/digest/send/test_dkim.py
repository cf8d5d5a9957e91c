"""The DKIM signer (digest/send/dkim.py): relaxed/relaxed canonicalisation, RSA-SHA256 and
Ed25519-SHA256 signatures that dkimpy and Perl's Mail::DKIM both verify, the double
signature, the TXT record, and every key the signer refuses at startup."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import DkimSettings, SenderSettings, load_settings
from digest.errors import ConfigError
from digest.send.dispatcher import DispatchOptions
from digest.send.dkim import (
    DKIM_HEADERS,
    DkimSigner,
    PrivateKey,
    canonical_body,
    canonical_header,
    dns_record,
    txt_record,
)
from digest.send.mime import MessageParts, MessageTemplate, SharedHeaders
from tests.helpers.dkim import (
    dkimpy_results,
    key_file,
    perl_results,
    records,
)
from tests.helpers.paths import ROOT

SUBJECT = "نشرتك اليومية: اجتماع وزراء الخارجية العرب في القاهرة لبحث الأوضاع الإقليمية"
CLOCK = 1_780_000_000.7
SENDER = SenderSettings(reply_to="editors@news.example.org")


def _signer(tmp_path: Path, *kinds: str) -> tuple[DkimSigner, dict[str, str]]:
    """A signer with one key per kind (selectors k0, k1), and the records to publish."""
    keys: dict[str, PrivateKey] = {}
    paths = []
    for number, kind in enumerate(kinds):
        bits = 3072 if kind == "rsa3072" else 2048
        paths.append(tmp_path / f"k{number}.pem")
        keys[f"k{number}"] = key_file(paths[-1], kind.removesuffix("3072"), bits)
    second = {"second_selector": "k1", "second_private_key_path": str(paths[-1])}
    settings = DkimSettings(
        selector="k0", private_key_path=str(paths[0]), **(second if len(kinds) > 1 else {})
    )
    signer = DkimSigner.from_settings(settings, SENDER, clock=lambda: CLOCK)
    assert signer is not None
    return signer, records(keys)


def _message(signer: DkimSigner | None, name: str = "علي بن أحمد", body: str = "مرحبا") -> bytes:
    shared = SharedHeaders(list_name="النشرة اليومية", list_slug="daily", subject=SUBJECT)
    return MessageTemplate(SENDER, shared, signer).build(
        MessageParts(
            to_address="ali@example.com",
            to_name=name,
            html=f'<html dir="rtl"><body><p>{body}</p></body></html>\n',
            text=f"{body}\n",
            unsubscribe_url="https://news.example.org/u/TOKEN",
            unsubscribe_mailto="mailto:unsubscribe@news.example.org?subject=TOKEN",
            date=datetime(2026, 12, 3, 6, tzinfo=UTC),
        )
    )


def _tampered(message: bytes) -> list[bytes]:
    """The message changed in one body byte, and in List-Unsubscribe-Post."""
    last_line = message.rstrip(b"\r\n").rfind(b"\r\n--") - 1  # end of the html part's base64
    body_byte = message[:last_line] + bytes([message[last_line] ^ 1]) + message[last_line + 1 :]
    post = message.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=One-Clack")
    assert body_byte != message and post != message
    return [body_byte, post]


def test_relaxed_canonicalisation_is_rfc_6376s_example() -> None:
    # RFC 6376 §3.4.6, relaxed headers and relaxed body.
    assert canonical_header(b"A: X\r\n") == ("a", b"a:X\r\n")
    assert canonical_header(b"B : Y\t\r\n\tZ  \r\n") == ("b", b"b:Y Z\r\n")
    assert canonical_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert canonical_body(b"") == b"" and canonical_body(b"\r\n\r\n") == b""
    assert canonical_body(b"no line end ") == b"no line end\r\n"
    plain = b"Content-Type: text/plain\r\n\r\nQUJD\r\n--b--\r\n"
    assert canonical_body(plain) is plain  # base64 parts: hashed as they are, no copy
    for body in (b"a \r\n", b"a  b\r\n", b"a \tb\r\n", b"x\r\n" + b"a b\r\n" * 70 + b"c  d\r\n"):
        assert canonical_body(body) == body.replace(b" \t", b" ").replace(b"  ", b" ").replace(
            b" \r\n", b"\r\n"
        )


@pytest.mark.parametrize("kind", ["rsa", "rsa3072", "ed25519"])
def test_each_key_kind_signs_what_dkimpy_and_mail_dkim_verify(kind: str, tmp_path: Path) -> None:
    signer, published = _signer(tmp_path, kind)
    message = _message(signer)
    assert dkimpy_results(message, published) == [True]
    algorithm = "ed25519-sha256" if kind == "ed25519" else "rsa-sha256"
    header = message[: message.index(b"\r\nDate: ")].decode("ascii")
    assert f"a={algorithm}; c=relaxed/relaxed; d=news.example.org" in header
    assert f"t={int(CLOCK)};" in header
    signed = re.search(r"h=([^;]+)", header)
    assert signed is not None
    names = {name.strip() for name in signed.group(1).split(":")}
    assert names == {*DKIM_HEADERS, "reply-to"}  # both List-Unsubscribe headers (RFC 8058)
    assert all(len(line) <= 78 for line in header.split("\r\n"))
    for changed in _tampered(message):
        assert dkimpy_results(changed, published) == [False]
    perl = perl_results([message, *_tampered(message)], published, tmp_path / "perl")
    assert [verdict["result"] for verdict in perl] == ["pass", "fail", "fail"]


def test_the_double_signature_carries_both_and_each_verifies(tmp_path: Path) -> None:
    signer, published = _signer(tmp_path, "ed25519", "rsa")
    name = "عبد الرحمن بن عبد العزيز آل سعود، مدير تحرير النشرة الاقتصادية"  # a folded To
    message = _message(signer, name=name)
    assert message.count(b"DKIM-Signature: ") == 2
    assert b"a=ed25519-sha256" in message and b"a=rsa-sha256" in message
    assert re.search(rb"\r\nTo: [^\r\n]+\r\n [^\r\n]+", message)
    assert dkimpy_results(message, published) == [True, True]
    perl = perl_results([message, *_tampered(message)], published, tmp_path / "perl")
    for algorithm in ("ed25519-sha256", "rsa-sha256"):
        assert [verdict[algorithm].split()[0] for verdict in perl] == ["pass", "fail", "fail"]
    for changed in _tampered(message):
        assert dkimpy_results(changed, published) == [False, False]


def test_one_segment_signs_many_messages_each_verifying(tmp_path: Path) -> None:
    signer, published = _signer(tmp_path, "rsa")
    shared = SharedHeaders(list_name="Daily", list_slug="daily", subject="Short subject")
    template = MessageTemplate(SenderSettings(), shared, signer)
    for number in range(5):
        message = template.build(
            MessageParts(
                to_address=f"r{number}@example.org",
                to_name=f"قارئ {number}",
                html=f"<p>{number}</p>",
                text=f"{number} {'  ' * number}end",
                unsubscribe_url=f"https://news.example.org/u/{number}",
            )
        )
        assert dkimpy_results(message, published) == [True]


def test_the_txt_record_is_cut_into_255_byte_strings(tmp_path: Path) -> None:
    for bits in (2048, 4096):
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        line = txt_record("s1", "example.org", key)
        assert line.startswith('s1._domainkey.example.org TXT "v=DKIM1; k=rsa; p=')
        strings = re.findall(r'"([^"]*)"', line)
        assert len(strings) > 1 and all(len(s) <= 255 for s in strings)
        assert "".join(strings) == dns_record(key)


def test_dkim_is_off_when_no_key_is_set() -> None:
    shipped = load_settings(ROOT / "settings.toml")
    assert DkimSigner.from_settings(shipped.dkim, shipped.sender) is None


def _refused(settings: DkimSettings, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DkimSigner.from_settings(settings, SENDER)


def test_keys_that_cannot_sign_are_refused_at_startup_naming_the_setting(tmp_path: Path) -> None:
    rsa_path, ed_path, weak = tmp_path / "rsa.pem", tmp_path / "ed.pem", tmp_path / "weak.pem"
    key_file(rsa_path)
    key_file(ed_path, "ed25519")
    weak.write_bytes(b"")
    weak.unlink()
    key_file(weak, bits=1024)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    (tmp_path / "folder.pem").mkdir()

    def one(path: Path, **more: str) -> DkimSettings:
        return DkimSettings(selector="s1", private_key_path=str(path), **more)  # type: ignore[arg-type]

    _refused(one(garbage), r"dkim\.private_key_path .*garbage\.pem is not an unencrypted PEM")
    _refused(one(tmp_path / "absent.pem"), r"dkim\.private_key_path .*absent\.pem cannot be read")
    _refused(one(tmp_path / "folder.pem"), r"dkim\.private_key_path .* cannot be read")
    _refused(one(weak), r"1024-bit RSA key: too weak")
    _refused(one(ed_path, algorithm="rsa"), r"is an ed25519 key but the algorithm .* rsa")
    _refused(one(rsa_path, algorithm="ed25519"), r"is an rsa key but the algorithm .* ed25519")
    second = one(rsa_path, second_selector="s2", second_private_key_path=str(garbage))
    _refused(second, r"dkim\.second_private_key_path .*garbage\.pem is not an unencrypted PEM")
    wrong = one(rsa_path, second_selector="s2", second_private_key_path=str(rsa_path))
    _refused(wrong.model_copy(update={"second_algorithm": "ed25519"}), r"dkim\.second_private")
    same = one(rsa_path, second_selector="S1", second_private_key_path=str(ed_path))
    _refused(same, r"dkim\.second_selector is dkim\.selector")
    _refused(one(rsa_path).model_copy(update={"selector": ""}), r"dkim\.selector '' is empty")
    lone = DkimSettings().model_copy(update={"second_private_key_path": str(ed_path)})
    _refused(lone, r"dkim\.private_key_path is empty")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("dkim.selector", "bad_selector", r"dkim\.selector"),
        ("dkim.selector", "two words", r"dkim\.selector"),
        ("dkim.second_selector", "x;y", r"dkim\.second_selector"),
        ("dkim.algorithm", "dsa", r"dkim\.algorithm"),
        ("dkim.private_key_path", "/k.pem", r"dkim\.selector is empty"),
        ("dkim.second_private_key_path", "/k.pem", r"dkim\.second_selector is empty"),
    ],
)
def test_bad_dkim_settings_are_refused_when_settings_load(key: str, value: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(ROOT / "settings.toml", {key: value})


def test_a_send_with_a_bad_key_stops_before_any_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file(tmp_path / "weak.pem", bits=1024)
    monkeypatch.setenv("DIGEST_DKIM__SELECTOR", "s1")
    monkeypatch.setenv("DIGEST_DKIM__PRIVATE_KEY_PATH", str(tmp_path / "weak.pem"))
    settings = load_settings(ROOT / "settings.toml")
    with pytest.raises(ConfigError, match=r"dkim\.private_key_path .* too weak"):
        DispatchOptions.from_settings(settings)  # where every send builds its signer
