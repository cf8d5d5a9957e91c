"""Amazon SES through SNS: AWS's sample notifications signed by a stand-in SNS key (both
signature versions), refused when unsigned, tampered, for another topic or with a signing
certificate off SNS's hosts (never fetched), and the SES events mapped to verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.db.models import InboundKind
from digest.inbound.esp.payload import Forbidden, Malformed, NotSigned, Upstream
from digest.inbound.esp.ses import SesWebhook, ses_verdicts
from digest.inbound.esp.sns import FetchFailed, sns_url, string_to_sign
from tests.helpers.esp import (
    CERT_URL,
    JSON,
    SES_BOUNCE,
    SES_COMPLAINT,
    SES_DELIVERY,
    SUBSCRIBE_URL,
    TOPIC,
    SnsKey,
    ses_event,
    sns_confirmation,
    sns_notification,
)

SNS = SnsKey()


def webhook(topics: tuple[str, ...] = (TOPIC,)) -> SesWebhook:
    SNS.fetched.clear()
    return SesWebhook(topics, SNS.fetch)


@pytest.mark.parametrize("version", ["1", "2"])
def test_the_documented_bounce_signed_by_sns_is_a_hard_bounce(version: str) -> None:
    [verdict] = webhook().handle(SNS.sign(sns_notification(SES_BOUNCE), version))
    assert verdict.kind == InboundKind.HARD_BOUNCE
    assert verdict.address == "jane@example.com"
    assert (verdict.status, verdict.smtp_code) == ("5.1.1", 550)
    assert verdict.diagnostic == "smtp; 550 5.1.1 <jane@example.com>... User"
    assert verdict.original_message_id == "custom-message-ID"
    assert verdict.external_id == "ses:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert verdict.occurred_at == datetime(2016, 1, 27, 14, 59, 38, 237000, tzinfo=UTC)
    assert "Permanent/General" in verdict.reason and "action failed" in verdict.reason


def test_the_documented_complaint_is_a_complaint_of_its_recipient() -> None:
    [verdict] = webhook().handle(SNS.sign(sns_notification(SES_COMPLAINT)))
    assert verdict.kind == InboundKind.COMPLAINT
    assert verdict.address == "richard@example.com"
    assert "abuse" in verdict.reason
    assert "000001378603177f-18c07c78" in verdict.reason  # the feedback id


def test_a_delivery_is_acknowledged_and_not_recorded() -> None:
    assert webhook().handle(SNS.sign(sns_notification(SES_DELIVERY))) == []


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [
        ("Permanent", InboundKind.HARD_BOUNCE),
        ("Transient", InboundKind.SOFT_BOUNCE),
        ("Undetermined", InboundKind.SOFT_BOUNCE),
        ("SomethingNew", InboundKind.SOFT_BOUNCE),
    ],
)
def test_bounce_types(bounce_type: str, kind: InboundKind) -> None:
    event = ses_event(SES_BOUNCE)
    event["bounce"]["bounceType"] = bounce_type
    [verdict] = ses_verdicts(sns_notification(event))
    assert verdict.kind == kind


def test_each_recipient_of_one_bounce_is_its_own_event() -> None:
    event = ses_event(SES_BOUNCE, recipients=["jane@example.com", "mary@example.com"])
    verdicts = ses_verdicts(sns_notification(event, message_id="m-1"))
    assert [v.address for v in verdicts] == ["jane@example.com", "mary@example.com"]
    assert [v.external_id for v in verdicts] == ["ses:m-1:0", "ses:m-1:1"]


def test_event_publishing_names_and_delays() -> None:
    event = {
        "eventType": "DeliveryDelay",
        "mail": SES_BOUNCE["mail"],
        "deliveryDelay": {
            "delayType": "MailboxFull",
            "delayedRecipients": [
                {"emailAddress": "jane@example.com", "status": "4.2.2", "diagnosticCode": "452"}
            ],
            "timestamp": "2020-06-16T20:39:36.000Z",
        },
    }
    [verdict] = ses_verdicts(sns_notification(event))
    assert (verdict.kind, verdict.status) == (InboundKind.DELAYED, "4.2.2")
    renamed = {k: v for k, v in SES_BOUNCE.items() if k != "notificationType"}
    [bounce] = ses_verdicts(sns_notification({**renamed, "eventType": "Bounce"}))
    assert bounce.kind == InboundKind.HARD_BOUNCE


def test_the_message_id_header_when_common_headers_are_missing() -> None:
    event = ses_event(SES_BOUNCE)
    del event["mail"]["commonHeaders"]
    event["mail"]["headers"][2]["value"] = "<abc@news.example.org>"
    [verdict] = ses_verdicts(sns_notification(event))
    assert verdict.original_message_id == "abc@news.example.org"


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("not json", "not an SES event"),
        (json.dumps({"notificationType": "Received"}), "'Received' is not mapped"),
        (json.dumps({"notificationType": "Bounce", "bounce": {}}), "names no recipient"),
    ],
)
def test_signed_notifications_we_cannot_map_are_unknown(message: str, why: str) -> None:
    [verdict] = webhook().handle(SNS.sign(sns_notification(message)))
    assert verdict.kind == InboundKind.UNKNOWN
    assert why in verdict.reason
    assert verdict.external_id == "ses:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"


def test_the_certificate_is_fetched_once() -> None:
    hook = webhook()
    for _ in range(3):
        hook.handle(SNS.sign(sns_notification(SES_BOUNCE)))
    assert SNS.fetched == [CERT_URL]


def test_a_subscription_is_confirmed_by_fetching_its_url() -> None:
    hook = webhook()
    assert hook.handle(SNS.sign(sns_confirmation())) == []
    assert SNS.fetched == [CERT_URL, SUBSCRIBE_URL]
    assert hook.confirmed == [TOPIC]
    assert hook.handle(SNS.sign(sns_confirmation("UnsubscribeConfirmation"))) == []
    assert len(SNS.fetched) == 2  # an unsubscribe confirmation fetches nothing


def test_a_signed_subscribe_url_off_sns_hosts_is_never_fetched() -> None:
    message = dict(sns_confirmation(), SubscribeURL="https://evil.example/?Action=Confirm")
    with pytest.raises(Forbidden):
        webhook().handle(SNS.sign(message))
    assert SUBSCRIBE_URL not in SNS.fetched and len(SNS.fetched) <= 1


def signed(**changes: Any) -> dict[str, Any]:
    return {**json.loads(SNS.sign(sns_notification(SES_BOUNCE))), **changes}


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (sns_notification(SES_BOUNCE), NotSigned),  # no signature at all
        (signed(Signature=""), NotSigned),
        (signed(Message=json.dumps(ses_event(SES_BOUNCE, recipients=["x@y.org"]))), Forbidden),
        (signed(MessageId="another"), Forbidden),
        (signed(Subject="added after signing"), Forbidden),
        (signed(SignatureVersion="2"), Forbidden),  # signed with SHA1, claims SHA256
        (signed(SignatureVersion="3"), Forbidden),
        (signed(Signature="not base64!"), Forbidden),
        (signed(TopicArn="arn:aws:sns:us-west-2:123456789012:Other"), Forbidden),
        (signed(Timestamp=None), Forbidden),
    ],
)
def test_unsigned_and_tampered_messages_are_refused(
    body: dict[str, Any], refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        webhook().handle(json.dumps(body).encode())


def test_a_signature_by_another_key_is_refused() -> None:
    other = SnsKey()
    body = other.sign(sns_notification(SES_BOUNCE))
    with pytest.raises(Forbidden, match="does not verify"):
        webhook().handle(body)  # SNS.fetch serves SNS's certificate, not `other`'s


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "https://evil.example/sns.us-west-2.amazonaws.com/x.pem",
        "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user@sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com\\@evil.example/x.pem",
        "https://sns.us-west-2.amazonaws.com/../x.pem?y.pem",
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.txt",
        "https://s3.amazonaws.com/sns/x.pem",
        "https://sns.amazonaws.com/x.pem",
        "https://[::1]/x.pem",
        "not a url",
        # S3 serves any bucket, "sns" too, under *.s3.amazonaws.com's certificate.
        "https://sns.s3.amazonaws.com/evil.pem",
        "https://sns.s3.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.s3-website-us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.s3-external-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.execute-api.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com/evil.pem",
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-.pem",
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-xyz.pem",
        "https://sns.us-west-2.amazonaws.com/a/SimpleNotificationService-1.pem",
    ],
)
def test_certificate_urls_off_sns_hosts_are_refused_before_any_fetch(url: str) -> None:
    with pytest.raises(Forbidden):
        webhook().handle(json.dumps(signed(SigningCertURL=url)).encode())
    assert SNS.fetched == []


def test_sns_urls_are_rebuilt_from_checked_parts() -> None:
    china = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-a.pem"
    assert sns_url(china, certificate=True) == china
    gov = "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-0f.pem"
    assert sns_url(gov, certificate=True) == gov
    upper = "https://SNS.EU-WEST-1.amazonaws.com/SimpleNotificationService-0f.pem"
    assert sns_url(upper, certificate=True) == upper.replace("SNS.EU-WEST-1", "sns.eu-west-1")
    assert sns_url(SUBSCRIBE_URL, certificate=False) == SUBSCRIBE_URL
    with pytest.raises(Forbidden):
        sns_url(CERT_URL, certificate=False)


def test_a_certificate_that_cannot_be_fetched_asks_sns_to_send_again() -> None:
    def down(url: str) -> bytes:
        raise FetchFailed("timeout")

    with pytest.raises(Upstream):
        SesWebhook([TOPIC], down).handle(SNS.sign(sns_notification(SES_BOUNCE)))


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"Type": "Other"}', b"\xff\xfe", b"[" * 5000]
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(Malformed):
        webhook().handle(body)
    assert SNS.fetched == []


def test_the_string_to_sign_follows_the_documented_order() -> None:
    message = {**sns_notification("hi"), "Subject": "S"}
    expected = (
        f"Message\nhi\nMessageId\n{message['MessageId']}\nSubject\nS\n"
        f"Timestamp\n{message['Timestamp']}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    )
    assert string_to_sign(message) == expected.encode()


NAMES = st.sampled_from(["Bounce", "Complaint", "DeliveryDelay", "Delivery", "x"])


@settings(max_examples=100, deadline=None)
@given(
    name=NAMES,
    part=st.dictionaries(
        st.sampled_from(["bounceType", "bouncedRecipients", "complainedRecipients", "timestamp"]),
        JSON,
    ),
    mail=JSON,
)
def test_any_ses_event_shape_reads_without_crashing(name: str, part: Any, mail: Any) -> None:
    event = {"notificationType": name, "bounce": part, "complaint": part, "mail": mail}
    for verdict in ses_verdicts(sns_notification(json.dumps(event))):
        assert len(verdict.address) <= 320 and len(verdict.reason) <= 300


@pytest.mark.parametrize(
    ("names", "dns"),
    [
        (("evil.example",), ()),
        (("sns.amazonaws.com.evil.example",), ()),
        (("Amazon",), ("sns.eu-west-1.amazonaws.com",)),  # another region's host
        ((), ("*.amazonaws.com",)),
        ((), ()),
    ],
)
def test_a_certificate_not_issued_to_sns_is_refused(
    names: tuple[str, ...], dns: tuple[str, ...]
) -> None:
    impostor = SnsKey(common_names=names, dns_names=dns)
    with pytest.raises(Forbidden, match="not SNS's"):
        SesWebhook([TOPIC], impostor.fetch).handle(impostor.sign(sns_notification(SES_BOUNCE)))
    assert impostor.fetched == [CERT_URL]


@pytest.mark.parametrize(
    ("names", "dns"),
    [
        (("sns.amazonaws.com",), ()),
        (("sns.us-west-2.amazonaws.com",), ()),
        (("Amazon",), ("sns.us-west-2.amazonaws.com",)),
        (("Amazon",), ("other.example", "sns.amazonaws.com")),
    ],
)
def test_a_certificate_issued_to_sns_by_name_or_san_is_trusted(
    names: tuple[str, ...], dns: tuple[str, ...]
) -> None:
    key = SnsKey(common_names=names, dns_names=dns)
    [verdict] = SesWebhook([TOPIC], key.fetch).handle(key.sign(sns_notification(SES_BOUNCE)))
    assert verdict.kind is InboundKind.HARD_BOUNCE
