"""`[inbound]`: the bounce domain, its MX, the bounce policy, the polled mailbox and the
providers' webhooks (docs/inbound.md)."""

from __future__ import annotations

from pydantic import Field

from digest.settings.fields import Host, OptionalDnsName
from digest.settings.fields import Section as _Section

__all__ = ["EspSettings", "ImapSettings", "InboundSettings"]


class ImapSettings(_Section):
    """`[inbound.imap]`: a hosted mailbox that bounces land in, polled by the scheduler."""

    host: str = ""  # empty: no polling
    port: int = Field(993, ge=1, le=65535)
    tls: bool = True  # implicit TLS (port 993); false: plain IMAP, upgraded when starttls
    starttls: bool = False
    user: str = ""
    password: str = ""  # DIGEST_INBOUND__IMAP__PASSWORD
    folder: str = Field("INBOX", min_length=1)
    processed_folder: str = Field("Processed", min_length=1)
    human_folder: str = Field("Needs-human", min_length=1)
    poll_minutes: float = Field(5.0, gt=0, le=1440)
    batch: int = Field(200, ge=1, le=10_000)
    timeout: float = Field(60.0, gt=0, le=3600)


class EspSettings(_Section):
    """`[inbound.esp]`: providers' event webhooks; each stays off until its secret is set."""

    ses_topic_arns: list[str] = Field(default_factory=list)  # empty: SES webhook off
    postmark_user: str = ""
    postmark_password: str = ""
    sendgrid_public_key: str = ""  # base64 DER of the ECDSA key, as SendGrid shows it
    mailgun_signing_key: str = ""
    max_age_seconds: float = Field(300.0, gt=0, le=86_400)


class InboundSettings(_Section):
    """`[inbound]`: the bounce domain, its MX (`digest inbound`) and the bounce policy."""

    domain: OptionalDnsName = ""  # empty: envelope sender stays sender.from_address
    host: Host = "127.0.0.1"
    port: int = Field(2525, ge=1, le=65535)
    mailboxes: list[str] = Field(default_factory=lambda: ["postmaster", "abuse"])
    max_message_bytes: int = Field(10_000_000, ge=10_000, le=200_000_000)
    max_nesting: int = Field(5, ge=1, le=50)
    command_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    connection_timeout_seconds: float = Field(600.0, gt=0, le=86_400)
    tls_cert: str = ""
    tls_key: str = ""
    spool_dir: str = ""  # empty: "inbound-spool" beside the SQLite file, else var/inbound-spool
    keep_days: int = Field(30, ge=1, le=3650)
    soft_bounce_limit: int = Field(3, ge=1, le=1000)
    soft_bounce_days: float = Field(14.0, gt=0, le=365)
    pause_bounce_rate: float = Field(0.05, gt=0, le=1)
    pause_complaint_rate: float = Field(0.003, gt=0, le=1)
    pause_min_sample: int = Field(200, ge=1, le=10_000_000)
    imap: ImapSettings = ImapSettings()
    esp: EspSettings = EspSettings()
