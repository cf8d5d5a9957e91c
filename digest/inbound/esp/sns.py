"""Amazon SNS message signatures: the signing certificate's URL (only SNS's own hosts), the
certificate (issued to SNS) fetched once and kept, and the documented string to sign."""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from digest.inbound.esp.payload import Forbidden, NotSigned, Upstream

# GET an https URL, return the body; raise FetchFailed. Tests inject one (AWS is not here).
Fetch = Callable[[str], bytes]

FETCH_TIMEOUT_SECONDS = 5.0
FETCH_MAX_BYTES = 65_536  # a signing certificate is ~2 KB
CACHED_CERTIFICATES = 16  # SNS rotates its certificate rarely; a few regions at most
# SNS's regional endpoints: `sns.us-east-1.amazonaws.com`, `sns.us-gov-west-1.amazonaws.com`,
# `sns.cn-north-1.amazonaws.com.cn`. A region-shaped label, not any label: other services
# serve customers' content under *.amazonaws.com (an S3 bucket named "sns" is
# `sns.s3.amazonaws.com`), so a looser rule would let anyone host a "signing certificate".
_HOST = re.compile(
    r"sns\.(?:(?P<cn>cn-[a-z]+-\d{1,2})\.amazonaws\.com\.cn"
    r"|[a-z]{2}(?:-gov)?-[a-z]+-\d{1,2}\.amazonaws\.com)"
)
_CERT_PATH = re.compile(r"/SimpleNotificationService-[0-9a-f]{1,64}\.pem")
# The names SNS's signing certificate is issued to (its subject CN or a subjectAltName).
SNS_CERTIFICATE_NAME = "sns.amazonaws.com"
# The documented fields of the string to sign, in order ("Key\nValue\n" each); Subject
# only when the notification has one.
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class FetchFailed(Exception):
    """An SNS URL could not be fetched (network, status, size)."""


def fetch_https(url: str) -> bytes:
    """GET `url` (no redirects, a timeout, a size cap); FetchFailed for anything but a 200."""
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchFailed(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > FETCH_MAX_BYTES:
                    raise FetchFailed(f"response over {FETCH_MAX_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise FetchFailed(type(exc).__name__) from None


def sns_url(raw: str, *, certificate: bool) -> str:
    """The URL rebuilt from checked parts: https, an SNS host (`sns.<region>.amazonaws.com`,
    `.com.cn` for the China regions), no user, no port; a certificate's path is
    `/SimpleNotificationService-<hex>.pem`, a subscription's `/?Action=ConfirmSubscription…`.
    Forbidden for anything else, before any fetch."""
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        raise Forbidden("SNS URL is not a URL") from None
    host = parts.hostname or ""
    if parts.scheme != "https" or port is not None or parts.username or parts.password:
        raise Forbidden("SNS URL is not plain https")
    found = _HOST.fullmatch(host)
    if found is None or (found.group("cn") is None and host.startswith("sns.cn-")):
        raise Forbidden("SNS URL is not on an SNS host")
    if certificate:
        if not _CERT_PATH.fullmatch(parts.path) or parts.query or parts.fragment:
            raise Forbidden("signing certificate URL is not a .pem file")
        return f"https://{host}{parts.path}"
    if parts.path not in ("", "/") or not parts.query.startswith("Action=ConfirmSubscription&"):
        raise Forbidden("SubscribeURL is not a subscription confirmation")
    return f"https://{host}/?{parts.query}"


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The documented string to sign of an SNS message; Forbidden when a field is missing."""
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise Forbidden("not an SNS message type")
    lines: list[str] = []
    for name in fields:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            raise Forbidden(f"SNS field {name} missing")
        lines += [name, value]
    return ("\n".join(lines) + "\n").encode("utf-8")


class Certificates:
    """Signing certificates' RSA keys by URL, fetched once (a small LRU, thread-safe); a
    certificate whose subject CN or DNS names hold neither `sns.amazonaws.com` nor its URL's
    host is refused (Forbidden) and not kept."""

    def __init__(self, fetch: Fetch, size: int = CACHED_CERTIFICATES) -> None:
        self._fetch = fetch
        self._size = size
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            if url in self._keys:
                self._keys.move_to_end(url)
                return self._keys[url]
        try:
            self.fetches += 1
            pem = self._fetch(url)
        except FetchFailed as exc:
            raise Upstream(f"signing certificate not fetched: {exc}") from None
        try:
            certificate = x509.load_pem_x509_certificate(pem)
            key = certificate.public_key()
        except ValueError:
            raise Forbidden("signing certificate is not a certificate") from None
        host = urlsplit(url).hostname or ""
        if not {SNS_CERTIFICATE_NAME, host} & _issued_to(certificate):
            raise Forbidden("signing certificate is not SNS's (subject and names)")
        if not isinstance(key, rsa.RSAPublicKey):
            raise Forbidden("signing certificate is not RSA")
        with self._lock:
            self._keys[url] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key


def _issued_to(certificate: x509.Certificate) -> set[str]:
    """The host names a certificate is issued to: its subject's CNs and its DNS SANs."""
    names: set[str] = set()
    try:
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            if isinstance(attribute.value, str):
                names.add(attribute.value.lower())
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.update(n.lower() for n in san.value.get_values_for_type(x509.DNSName))
    except (x509.ExtensionNotFound, ValueError):  # no SAN; a malformed one names nobody
        pass
    return names


class SnsVerifier:
    """Checks that an SNS message is SNS's own, for one of `topic_arns`."""

    def __init__(self, topic_arns: Sequence[str], fetch: Fetch) -> None:
        self.topic_arns = frozenset(topic_arns)
        self.certificates = Certificates(fetch)

    def verify(self, message: Mapping[str, Any]) -> None:
        """NotSigned (no signature), Forbidden (another topic, a certificate URL off SNS's
        hosts, a bad signature), Upstream (certificate not fetched); None when genuine."""
        signature, cert_url, version = (
            message.get(k) for k in ("Signature", "SigningCertURL", "SignatureVersion")
        )
        if not (isinstance(signature, str) and isinstance(cert_url, str) and signature):
            raise NotSigned("SNS message is not signed")
        if message.get("TopicArn") not in self.topic_arns:
            raise Forbidden("SNS topic is not in [inbound.esp] ses_topic_arns")
        algorithm = _HASHES.get(str(version))
        if algorithm is None:
            raise Forbidden("SNS SignatureVersion is not 1 or 2")
        signed = string_to_sign(message)
        url = sns_url(cert_url, certificate=True)
        try:
            decoded = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise Forbidden("SNS signature is not base64") from None
        key = self.certificates.key(url)
        try:
            key.verify(decoded, signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise Forbidden("SNS signature does not verify") from None
