"""Benchmark DKIM signing: our signer (digest/send/dkim.py, `cryptography`) against dkimpy,
the signer it replaced, on a realistic ~55 KB Arabic digest.

Run: python bench/dkim_bench.py [--messages 300]

Prints, per key (RSA-2048, RSA-3072, Ed25519, and Ed25519 + RSA-2048 at once):
- the bare signature of one SHA-256 digest through `cryptography` (ms);
- the whole signing step per message in `MessageTemplate.build`: a build with the signer
  minus the same build without it (canonicalising what differs, body hash, signature(s));
- dkimpy's `dkim.sign` on the same finished message (what the old mime.py did per message;
  Ed25519 through PyNaCl, which dkimpy needs for it).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.config import SenderSettings
from digest.send.dkim import DKIM_HEADERS, DkimKey, DkimSigner, PrivateKey
from digest.send.mime import MessageParts, MessageTemplate, SharedHeaders

DOMAIN = "news.example.org"
SENDER = SenderSettings()
TITLE = "اجتماع وزراء الخارجية العرب في القاهرة لبحث الأوضاع الإقليمية والتطورات الأخيرة"
SUMMARY = (
    "ناقش الوزراء في جلستهم المغلقة سبل تعزيز التعاون الاقتصادي بين الدول الأعضاء، "
    "وأكدوا على أهمية الحوار في حل النزاعات، كما بحثوا ملفات الطاقة والمياه والأمن الغذائي "
    "والنقل. "
) * 2


def _bodies() -> tuple[str, str]:
    """A 20-article digest: HTML and its plain-text twin (~55 KB once in MIME)."""
    html, text = ['<html dir="rtl" lang="ar"><body><table width="100%">'], []
    for n in range(20):
        link = f"https://news.example.org/c/TOKEN{n:02d}/article-{n}"
        html.append(
            f'<tr><td style="padding:12px;font-family:Tahoma,Arial;direction:rtl">'
            f'<h2 style="font-size:20px;margin:0"><a href="{link}">{TITLE} {n}</a></h2>'
            f'<p style="font-size:15px;line-height:1.6;color:#333">{SUMMARY}</p></td></tr>\n'
        )
        text.append(f"{TITLE} {n}\n{SUMMARY}\n{link}\n")
    html.append("</table></body></html>\n")
    return "".join(html), "\n".join(text)


def _per_call(call: Callable[[int], object], count: int) -> float:
    """Milliseconds per call of `call(i)`, best of three rounds of `count`."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(count):
            call(i)
        best = min(best, time.perf_counter() - start)
    return best / count * 1000


def _dkimpy_key(key: PrivateKey) -> bytes:
    """The key as dkimpy takes it: PEM for RSA, the base64 32-byte seed for Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _variant(
    keys: tuple[DkimKey, ...],
    shared: SharedHeaders,
    parts: Callable[[int], MessageParts],
    count: int,
) -> tuple[float, float, float]:
    """(bare signatures, build with our signer, dkimpy signing) in ms per message."""
    digest = hashlib.sha256(b"headers").digest()
    bare = 0.0
    for key in keys:
        bare += _per_call(lambda _: key.sign(digest), count)  # noqa: B023 - called right here
    template = MessageTemplate(SENDER, shared, DkimSigner(keys))
    ours = _per_call(lambda i: template.build(parts(i)), count)
    message = MessageTemplate(SENDER, shared).build(parts(0))
    headers = [h.encode() for h in DKIM_HEADERS]

    def old(_: int) -> bytes:
        signed = message
        for key in keys:
            algorithm = key.algorithm.encode()
            signed = dkim.sign(
                signed, key.selector.encode(), DOMAIN.encode(), _dkimpy_key(key.key),
                include_headers=headers, signature_algorithm=algorithm,
            ) + signed  # fmt: skip
        return signed

    return bare, ours, _per_call(old, max(count // 10, 10))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    count = parser.parse_args().messages
    keys: dict[str, PrivateKey] = {
        "RSA-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RSA-3072": rsa.generate_private_key(public_exponent=65537, key_size=3072),
        "Ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    html, text = _bodies()
    shared = SharedHeaders(list_name="النشرة اليومية", list_slug="daily", subject=TITLE)

    def parts(i: int) -> MessageParts:
        return MessageParts(f"r{i}@example.org", f"القارئ رقم {i}", html, text, f"https://x/u/{i}")

    plain = MessageTemplate(SENDER, shared)
    unsigned = _per_call(lambda i: plain.build(parts(i)), count)
    size = len(plain.build(parts(0)))
    print(f"message: {size / 1000:.1f} KB; build without DKIM {unsigned:.3f} ms; {count} messages")
    print(
        f"{'key':<20} {'signature ms':>12} {'ours ms/msg':>12} {'dkimpy ms/msg':>14} {'ratio':>7}"
    )
    variants = [(name, (name,)) for name in keys] + [
        ("Ed25519 + RSA-2048", ("Ed25519", "RSA-2048"))
    ]
    for label, names in variants:
        chosen = tuple(DkimKey(f"s{n}", DOMAIN, keys[name]) for n, name in enumerate(names))
        bare, ours, theirs = _variant(chosen, shared, parts, count)
        ours -= unsigned
        print(f"{label:<20} {bare:>12.3f} {ours:>12.3f} {theirs:>14.3f} {theirs / ours:>6.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
