"""The configured webhooks, one per provider with its secret set; each checks a request's
headers and raw body and returns its verdicts, or raises a Refused with the HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from digest.config import EspSettings
from digest.errors import ConfigError
from digest.inbound.esp.mailgun import MailgunVerifier, mailgun_verdicts
from digest.inbound.esp.payload import Misconfigured, load_object
from digest.inbound.esp.postmark import check_credentials, postmark_verdicts
from digest.inbound.esp.sendgrid import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SendGridVerifier,
    public_key,
    sendgrid_verdicts,
)
from digest.inbound.esp.ses import SesWebhook
from digest.inbound.esp.sns import Fetch
from digest.inbound.verdicts import Source, Verdict

PROVIDERS = ("ses", "postmark", "sendgrid", "mailgun")


class Webhook(Protocol):
    source: Source

    def handle(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> list[Verdict]:
        """Verdicts of a genuine request; Refused (payload.py) otherwise. May block (SES
        fetches certificates): call it from a worker thread."""
        ...


@dataclass
class SesHook:
    webhook: SesWebhook
    source: Source = Source.SES

    def handle(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> list[Verdict]:
        return self.webhook.handle(raw)


@dataclass
class PostmarkHook:
    user: str
    password: str
    source: Source = Source.POSTMARK

    def handle(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> list[Verdict]:
        check_credentials(headers.get("authorization"), self.user, self.password)
        return postmark_verdicts(raw)


@dataclass
class SendGridHook:
    verifier: SendGridVerifier
    source: Source = Source.SENDGRID

    def handle(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> list[Verdict]:
        signature, stamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        self.verifier.verify(signature, stamp, raw, now)
        return sendgrid_verdicts(raw)


@dataclass
class MailgunHook:
    verifier: MailgunVerifier
    source: Source = Source.MAILGUN

    def handle(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> list[Verdict]:
        payload = load_object(raw)
        self.verifier.verify(payload, raw, now)
        return mailgun_verdicts(payload)


@dataclass
class BrokenHook:
    """A provider whose secret is set but unusable: every request is refused with 503."""

    source: Source
    problem: str

    def handle(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> list[Verdict]:
        raise Misconfigured(self.problem)


@dataclass
class Webhooks:
    """The providers configured in `[inbound.esp]`; a provider without its secret is None
    (its endpoint answers 404)."""

    ses: Webhook | None = None
    postmark: Webhook | None = None
    sendgrid: Webhook | None = None
    mailgun: Webhook | None = None

    @classmethod
    def from_settings(cls, esp: EspSettings, *, fetch: Fetch | None = None) -> Webhooks:
        """`fetch` GETs SNS's certificates and confirmation URLs (default: httpx)."""
        hooks = cls()
        if esp.ses_topic_arns:
            hooks.ses = SesHook(SesWebhook(esp.ses_topic_arns, fetch))
        if esp.postmark_user and esp.postmark_password:
            hooks.postmark = PostmarkHook(esp.postmark_user, esp.postmark_password)
        if esp.sendgrid_public_key:
            try:
                verifier = SendGridVerifier(
                    public_key(esp.sendgrid_public_key), esp.max_age_seconds
                )
                hooks.sendgrid = SendGridHook(verifier)
            except ConfigError as exc:
                hooks.sendgrid = BrokenHook(Source.SENDGRID, str(exc))
        if esp.mailgun_signing_key:
            hooks.mailgun = MailgunHook(
                MailgunVerifier(esp.mailgun_signing_key, esp.max_age_seconds)
            )
        return hooks

    def get(self, provider: str) -> Webhook | None:
        found: Webhook | None = getattr(self, provider) if provider in PROVIDERS else None
        return found
