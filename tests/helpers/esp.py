"""ESP webhook tests: the providers' documented sample payloads, and signers standing in for
the providers (a generated RSA key and self-signed certificate for SNS, a P-256 key for
SendGrid, a signing key for Mailgun). AWS is reached only through `SnsKey.fetch`."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from digest.inbound.esp.sns import FetchFailed

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
CERT_URL = (
    "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)
SUBSCRIBE_URL = (
    "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
    "arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d"
)


def _headers(to: str) -> list[dict[str, str]]:
    return [
        {"name": "From", "value": '"John Doe" <john@example.com>'},
        {"name": "To", "value": to},
        {"name": "Message-ID", "value": "custom-message-ID"},
        {"name": "Subject", "value": "Hello"},
        {"name": "Content-Type", "value": 'text/plain; charset="UTF-8"'},
        {"name": "Content-Transfer-Encoding", "value": "base64"},
        {"name": "Date", "value": "Wed, 27 Jan 2016 14:05:45 +0000"},
    ]


_TO = (
    '"Jane Doe" <jane@example.com>, "Mary Doe" <mary@example.com>, '
    '"Richard Doe" <richard@example.com>'
)
_MAIL = {
    "timestamp": "2016-01-27T14:59:38.237Z",
    "source": "john@example.com",
    "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
    "sourceIp": "127.0.3.0",
    "sendingAccountId": "123456789012",
    "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
    "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
    "headersTruncated": False,
    "headers": _headers(_TO),
    "commonHeaders": {
        "from": ["John Doe <john@example.com>"],
        "date": "Wed, 27 Jan 2016 14:05:45 +0000",
        "to": [
            "Jane Doe <jane@example.com>, Mary Doe <mary@example.com>, "
            "Richard Doe <richard@example.com>"
        ],
        "messageId": "custom-message-ID",
        "subject": "Hello",
    },
}
# Amazon SES Developer Guide, "Amazon SNS notification examples for Amazon SES".
SES_BOUNCE: dict[str, Any] = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "reportingMTA": "dns; email.example.com",
        "bouncedRecipients": [
            {
                "emailAddress": "jane@example.com",
                "status": "5.1.1",
                "action": "failed",
                "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User",
            }
        ],
        "bounceSubType": "General",
        "timestamp": "2016-01-27T14:59:38.237Z",
        "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
        "remoteMtaIp": "127.0.2.0",
    },
    "mail": _MAIL,
}
SES_COMPLAINT: dict[str, Any] = {
    "notificationType": "Complaint",
    "complaint": {
        "userAgent": "AnyCompany Feedback Loop (V0.01)",
        "complainedRecipients": [{"emailAddress": "richard@example.com"}],
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2016-01-27T14:59:38.237Z",
        "timestamp": "2016-01-27T14:59:38.237Z",
        "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
    },
    "mail": {**_MAIL, "messageId": "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000"},
}
SES_DELIVERY: dict[str, Any] = {
    "notificationType": "Delivery",
    "mail": {**_MAIL, "destination": ["jane@example.com"], "headers": _headers("jane@example.com")},
    "delivery": {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "recipients": ["jane@example.com"],
        "processingTimeMillis": 546,
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
        "smtpResponse": "250 ok:  Message 64111812 accepted",
        "remoteMtaIp": "127.0.2.0",
    },
}


def ses_event(sample: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of a sample with top-level changes (and `recipients=` for a bounce)."""
    event = copy.deepcopy(sample)
    recipients = changes.pop("recipients", None)
    message_id = changes.pop("message_id", None)
    event.update(changes)
    if recipients is not None:
        part, key = ("bounce", "bouncedRecipients")
        if event["notificationType"] == "Complaint":
            part, key = ("complaint", "complainedRecipients")
        event[part][key] = [
            {**event[part][key][0], "emailAddress": address} for address in recipients
        ]
    if message_id is not None:
        event["mail"]["commonHeaders"]["messageId"] = message_id
    return event


def sns_notification(event: dict[str, Any] | str, *, message_id: str = "") -> dict[str, Any]:
    """The SNS envelope (AWS's sample HTTP notification) around an SES event, unsigned."""
    return {
        "Type": "Notification",
        "MessageId": message_id or "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": event if isinstance(event, str) else json.dumps(event),
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe"
        "&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec",
    }


def sns_confirmation(kind: str = "SubscriptionConfirmation") -> dict[str, Any]:
    """AWS's sample SubscriptionConfirmation (or UnsubscribeConfirmation), unsigned."""
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic " + TOPIC + ".\nTo confirm "
        "the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2012-04-26T20:45:04.751Z",
    }


class SnsKey:
    """Stands in for SNS: signs messages; `fetch` serves the certificate at CERT_URL and
    records subscription confirmations."""

    def __init__(
        self,
        common_names: tuple[str, ...] = ("sns.amazonaws.com",),
        dns_names: tuple[str, ...] = (),
    ) -> None:
        """A certificate issued to `common_names` (SNS's by default) and, when given, with a
        subjectAltName of `dns_names`."""
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in common_names])
        issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA")])
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
        )
        if dns_names:
            san = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
            builder = builder.add_extension(san, critical=False)
        self.pem = builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        self.fetched: list[str] = []

    def sign(self, message: dict[str, Any], version: str = "1") -> bytes:
        """The message signed as SNS documents it (its string to sign built here, apart from
        the code under test), as the JSON body SNS posts."""
        signed = dict(message, SignatureVersion=version, SigningCertURL=CERT_URL)
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        if message["Type"] != "Notification":
            fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
            fields.append("Type")
        text = "".join(f"{f}\n{message[f]}\n" for f in fields if f in message)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return json.dumps(signed, indent=2).encode()

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url == CERT_URL:
            return self.pem
        if url.startswith("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"):
            return b"<ConfirmSubscriptionResponse/>"
        raise FetchFailed("HTTP 404")


# Postmark's webhook documentation, sample payloads.
POSTMARK_BOUNCE: dict[str, Any] = {
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "Test",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "ServerID": 23,
    "MessageStream": "outbound",
    "Description": "The server was unable to deliver your message (ex: unknown user, "
    "mailbox not found).",
    "Details": "Test bounce details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Test subject",
    "Content": "<Full dump of bounce>",
}
POSTMARK_SPAM: dict[str, Any] = {
    **POSTMARK_BOUNCE,
    "RecordType": "SpamComplaint",
    "ID": 42,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "MessageID": "00000000-0000-0000-0000-000000000000",
    "Description": "",
    "Details": "Test spam complaint details",
    "CanActivate": False,
    "Content": "<Abuse report dump>",
}
POSTMARK_SUBSCRIPTION: dict[str, Any] = {
    "RecordType": "SubscriptionChange",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "ServerID": 123456,
    "MessageStream": "outbound",
    "ChangedAt": "2020-02-01T10:53:34.416071Z",
    "Recipient": "bounced-address@wildbit.com",
    "Origin": "Recipient",
    "SuppressSending": True,
    "SuppressionReason": "ManualSuppression",
    "Tag": "my-tag",
    "Metadata": {"example": "value", "example_2": "value"},
}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _sendgrid(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": "cat facts",
        "sg_event_id": f"sg_event_id_{event}",
        "sg_message_id": "sg_message_id",
        **extra,
    }


# SendGrid's Event Webhook documentation, the sample batch (event ids made distinct).
SENDGRID_BATCH: list[dict[str, Any]] = [
    _sendgrid("processed"),
    _sendgrid("deferred", response="400 try again later", attempt="5"),
    _sendgrid("delivered", response="250 OK"),
    _sendgrid("open", useragent="Mozilla/4.0", ip="255.255.255.255"),
    _sendgrid(
        "click", useragent="Mozilla/4.0", ip="255.255.255.255", url="http://www.sendgrid.com/"
    ),
    _sendgrid("bounce", reason="500 unknown recipient", status="5.0.0", type="bounce"),
    _sendgrid("dropped", reason="Bounced Address", status="5.0.0"),
    _sendgrid("spamreport"),
    _sendgrid("unsubscribe"),
    _sendgrid("group_unsubscribe", useragent="Mozilla/4.0", ip="255.255.255.255", asm_group_id=10),
    _sendgrid("group_resubscribe", useragent="Mozilla/4.0", ip="255.255.255.255", asm_group_id=10),
]


class SendGridKey:
    """Stands in for SendGrid: a P-256 key; `public` as SendGrid shows it (base64 DER)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public = base64.b64encode(der).decode()

    def headers(self, raw: bytes, timestamp: int) -> dict[str, str]:
        signature = self.key.sign(str(timestamp).encode() + raw, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
            "Content-Type": "application/json",
        }


MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
# Mailgun's webhook documentation, the sample "failed" (permanent) event.
MAILGUN_FAILED: dict[str, Any] = {
    "event": "failed",
    "id": "G9Bn5sl1TC6nu79C8C0bwg",
    "timestamp": 1521233123.501324,
    "log-level": "error",
    "severity": "permanent",
    "reason": "suppress-bounce",
    "envelope": {
        "sender": "bob@sandbox.mailgun.org",
        "transport": "smtp",
        "targets": "alice@example.com",
    },
    "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False},
    "delivery-status": {
        "attempt-no": 1,
        "message": "",
        "code": 605,
        "description": "Not delivering to previously bounced address",
        "session-seconds": 0.0,
    },
    "message": {
        "headers": {
            "to": "Alice <alice@example.com>",
            "message-id": "20130503182626.18666.16540@sandbox.mailgun.org",
            "from": "Bob <bob@sandbox.mailgun.org>",
            "subject": "Test permanent_fail webhook",
        },
        "attachments": [],
        "size": 111,
    },
    "recipient": "alice@example.com",
    "recipient-domain": "example.com",
    "storage": {"url": "https://se.api.mailgun.net/v3/domains/sandbox/messages/key", "key": "k"},
    "campaigns": [],
    "tags": ["my_tag_1", "my_tag_2"],
    "user-variables": {"my_var_1": "Mailgun Variable #1", "my-var-2": "awesome"},
}


def mailgun_body(
    event_data: dict[str, Any], *, timestamp: int, token: str, key: str = MAILGUN_KEY
) -> bytes:
    """Mailgun's JSON webhook body: the signature object and the event."""
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    signature = {"timestamp": str(timestamp), "token": token, "signature": digest}
    return json.dumps({"signature": signature, "event-data": event_data}).encode()


# Any JSON value, for the property tests: no payload shape may crash a mapping.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


def json_like(sample: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A sample with any of its top-level fields replaced by any JSON value."""
    return st.dictionaries(st.sampled_from(sorted(sample)), JSON).map(lambda d: {**sample, **d})
