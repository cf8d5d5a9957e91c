"""Typed settings: settings.toml < DIGEST_* environment variables < command-line overrides."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.errors import ConfigError
from digest.settings.brand import BrandSettings as BrandSettings
from digest.settings.brand import adopt_legacy_keys
from digest.settings.fields import (
    Address,
    DnsName,
    Host,
    OptionalAddress,
    OptionalDnsName,
    valid,
)
from digest.settings.fields import Section as _Section
from digest.settings.fields import check as _check
from digest.settings.folders import OptionalFolder
from digest.settings.inbound import EspSettings as EspSettings
from digest.settings.inbound import ImapSettings as ImapSettings
from digest.settings.inbound import InboundSettings as InboundSettings
from digest.settings.logs import LogSettings as LogSettings
from digest.settings.nameservers import OptionalNameserver
from digest.settings.sources import DEFAULT_CONFIG as DEFAULT_CONFIG
from digest.settings.sources import (
    DictSource,
    check_sections,
    config_path,
    describe,
    nest,
    read_toml,
)
from digest.settings.sources import parse_override as parse_override
from digest.text.locators import (
    database_url_problem,
    web_url_problem,
)
from digest.text.placeholders import placeholder_problems

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "placeholder"})
MIN_SECRET_BYTES = 32  # web.secret_key signs every link: shorter keys can be searched
SECRET_HOWTO = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
# CAN-SPAM and Gmail's and Yahoo's bulk-sender rules: every digest names where the sender is.
POSTAL_ADDRESS_WHY = (
    "every email must carry the publisher's postal address (CAN-SPAM, bulk-sender rules); "
    "set it in [brand] (DIGEST_BRAND__POSTAL_ADDRESS)"
)


class DatabaseSettings(_Section):
    url: Annotated[str, valid(database_url_problem)] = "sqlite:///./var/digest.sqlite3"
    busy_timeout_seconds: float = Field(30.0, ge=0, le=3600)


class SmtpSettings(_Section):
    host: Host = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    username: str = ""
    password: str = ""
    starttls: bool = False
    tls: bool = False
    timeout: float = Field(30.0, gt=0)
    connections: int = Field(4, ge=1, le=256)
    rate: float = Field(0.0, ge=0)
    retry_deadline_hours: float = Field(6.0, gt=0, le=168)
    retry_base_seconds: float = Field(60.0, gt=0, le=86_400)
    # The run's breaker (digest/send/breaker.py): once `breaker_min_messages` outcomes are
    # in, a run stops (edition held, nobody suppressed) when, among the last
    # `breaker_window`, the share of permanent refusals reaches `breaker_permanent_share`
    # or that of timeouts, dropped connections and 421s reaches `breaker_stall_share`.
    breaker_window: int = Field(100, ge=1, le=100_000)
    breaker_min_messages: int = Field(20, ge=1, le=100_000)
    breaker_permanent_share: float = Field(0.5, gt=0, le=1)
    breaker_stall_share: float = Field(0.5, gt=0, le=1)
    # The relay carries SMTPUTF8 mail: addresses with a non-ASCII local part (مها@example.org)
    # are accepted at input. Off, they are refused with a clear message where they come in.
    smtputf8: bool = False


class SenderSettings(_Section):
    from_name: str = "النشرة اليومية"
    from_address: Address = "digest@news.example.org"
    reply_to: OptionalAddress = ""
    list_id_domain: DnsName = "news.example.org"
    feedback_id: str = Field("newsdigest", min_length=5, max_length=15)
    unsubscribe_address: OptionalAddress = ""


class DkimSettings(_Section):
    """DKIM signing; an empty private_key_path disables it. A second key (second_selector,
    second_private_key_path) adds a second signature to every message: Ed25519 and RSA at
    once, as RFC 8463 recommends. The key files are read by the signer (digest/send/dkim.py)."""

    selector: OptionalDnsName = ""
    domain: OptionalDnsName = ""
    private_key_path: str = ""
    # "" takes each key's own kind; "rsa" or "ed25519" refuses a key of the other kind.
    algorithm: Literal["", "rsa", "ed25519"] = ""
    second_selector: OptionalDnsName = ""
    second_private_key_path: str = ""
    second_algorithm: Literal["", "rsa", "ed25519"] = ""
    # Where `digest doctor` looks the keys' TXT records up; "" is the system's resolver.
    nameserver: OptionalNameserver = ""

    @model_validator(mode="after")
    def _selectors(self) -> DkimSettings:
        if self.private_key_path and not self.selector:
            raise ValueError(
                "dkim.selector is empty: set it to the selector whose TXT record holds the "
                "public key, or empty dkim.private_key_path to disable DKIM"
            )
        if self.second_private_key_path and not self.second_selector:
            raise ValueError(
                "dkim.second_selector is empty: set it for dkim.second_private_key_path"
            )
        return self


class WebSettings(_Section):
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = "change-me"
    host: Host = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    access_log: bool = False
    event_flush_seconds: float = Field(0.5, gt=0, le=60)
    event_batch: int = Field(500, ge=1, le=100_000)
    event_max_pending: int = Field(200_000, ge=1_000)
    machine_seconds: float = Field(10.0, ge=0, le=3600)
    subscribe_rate: int = Field(5, ge=1, le=10_000)
    subscribe_window_seconds: float = Field(3600.0, gt=0)
    form_max_age_hours: float = Field(24.0, gt=0, le=24 * 30)
    max_body_bytes: int = Field(65_536, ge=1_024, le=10_000_000)
    consent_version: str = Field("1", min_length=1, max_length=32)
    # Peers whose X-Forwarded-For is believed (IPs or networks); empty: never believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    confirm_max_age_days: float = Field(7.0, gt=0, le=365)
    confirm_cooldown_minutes: float = Field(60.0, ge=0, le=7 * 24 * 60)
    confirm_poll_seconds: float = Field(5.0, gt=0, le=3600)
    confirm_retry_seconds: float = Field(60.0, gt=0, le=86_400)
    unsubscribe_busy_seconds: float = Field(2.0, gt=0, le=60)
    spool_dir: str = ""
    spool_poll_seconds: float = Field(1.0, gt=0, le=60)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # `--set web.trusted_proxies=10.0.0.1,10.0.0.2`
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry[:60]!r} is not an IP address or network") from None
        return value

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        _check(web_url_problem(value, base=True))
        return value.rstrip("/")


class DigestSettings(_Section):
    timezone: str = "Asia/Riyadh"
    hour: int = Field(7, ge=0, le=23)
    max_articles: int = Field(20, ge=1, le=200)
    locale: Literal["ar", "en"] = "ar"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value


SUBJECT_PLACEHOLDERS = frozenset({"top_title", "count", "list_name", "date", "publisher"})


class RenderSettings(_Section):
    digits: Literal["arabic", "latin"] = "arabic"
    subject: str = "نشرتك اليومية: {top_title}"
    subject_en: str = "Your daily digest: {top_title}"
    site_url: str = ""
    max_html_bytes: int = Field(100_000, ge=20_000, le=102_000)
    templates_dir: OptionalFolder = ""

    @field_validator("subject", "subject_en")
    @classmethod
    def _safe_subject(cls, value: str) -> str:
        problems = placeholder_problems(value, SUBJECT_PLACEHOLDERS)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("site_url")
    @classmethod
    def _strip_site_slash(cls, value: str) -> str:
        if value:
            _check(web_url_problem(value))
        return value.rstrip("/")


class IngestSettings(_Section):
    """Fetching and reading feeds: `timeout` is one deadline for a whole fetch (connect to
    last byte), `max_bytes` caps the decoded body, `max_depth` the nesting of a document."""

    timeout: float = Field(20.0, gt=0, le=600)
    max_bytes: int = Field(10_000_000, ge=1_000, le=1_000_000_000)
    max_depth: int = Field(100, ge=10, le=10_000)
    user_agent: str = Field("digest-engine/0.1 (+https://news.example.org)", min_length=1)


class SchedulerSettings(_Section):
    """When `digest scheduler` runs each job, and how late a missed digest may still go out."""

    ingest_minutes: float = Field(10.0, gt=0, le=1440)
    dispatch_minutes: float = Field(5.0, gt=0, le=1440)
    retry_minutes: float = Field(2.0, gt=0, le=1440)
    lateness_hours: float = Field(6.0, gt=0, le=24)
    retention_days: int = Field(180, ge=1, le=36_500)
    housekeeping_hour: int = Field(4, ge=0, le=23)
    timezone: str = "Asia/Riyadh"
    leader_poll_seconds: float = Field(15.0, gt=0, le=3600)
    health_port: int = Field(0, ge=0, le=65535)  # 0: no liveness endpoint

    @field_validator("lateness_hours")
    @classmethod
    def _longer_than_a_tick(cls, value: float, info: ValidationInfo) -> float:
        # Shorter than one dispatch interval, every digest would be skipped as late.
        tick = info.data.get("dispatch_minutes")
        if tick is not None and value * 60 < tick:
            raise ValueError(f"must be at least one dispatch interval ({tick:g} minutes)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value


class WorkersSettings(_Section):
    """`digest worker` processes sharing one PostgreSQL database (see README "Scaling out")."""

    enabled: bool = False
    count: int = Field(1, ge=1, le=1024)
    batch: int = Field(200, ge=1, le=10_000)
    lease_seconds: float = Field(120.0, ge=5, le=86_400)
    poll_seconds: float = Field(2.0, gt=0, le=3600)
    health_port: int = Field(0, ge=0, le=65535)  # 0: no liveness endpoint


class Settings(BaseSettings):
    """Every setting of the engine; built once by `load_settings` and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    env: Literal["development", "production"] = "development"
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    sender: SenderSettings = SenderSettings()
    dkim: DkimSettings = DkimSettings()
    web: WebSettings = WebSettings()
    digest: DigestSettings = DigestSettings()
    ingest: IngestSettings = IngestSettings()
    render: RenderSettings = RenderSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    workers: WorkersSettings = WorkersSettings()
    inbound: InboundSettings = InboundSettings()
    brand: BrandSettings = BrandSettings()
    # [render] publisher_name(_en) and [sender] postal_address: now [brand] keys.
    legacy_brand_keys = model_validator(mode="before")(adopt_legacy_keys)
    log: LogSettings = LogSettings()

    def check_secrets(self) -> None:
        """Refuse placeholder secrets outside development, naming the variable to set."""
        if self.env == "development":
            return
        problem = secret_problem(self.web.secret_key)
        if problem is not None:
            raise ConfigError(f"web.secret_key {problem}: {_SECRET_FIX}")
        if self.smtp.username and not self.smtp.password:
            raise ConfigError("smtp.username is set but no password: set DIGEST_SMTP__PASSWORD")
        imap = self.inbound.imap
        if imap.host and not imap.password:
            raise ConfigError(
                "inbound.imap.host is set but no password: set DIGEST_INBOUND__IMAP__PASSWORD"
            )
        if not self.brand.postal_address.strip():
            raise ConfigError(f"brand.postal_address is empty: {POSTAL_ADDRESS_WHY}")

    def link_secret_warning(self, *, listen_host: str | None = None) -> str | None:
        """None when web.secret_key can sign links. A weak key (a placeholder, or under
        MIN_SECRET_BYTES) is refused with ConfigError, in every mode, unless this is
        development and nobody else can follow a link signed with it: `web.base_url`, and
        `listen_host` when serving, on loopback. Then the warning to show, loudly."""
        problem = secret_problem(self.web.secret_key)
        if problem is None:
            return None
        base_host = urlsplit(self.web.base_url).hostname or ""
        local = is_loopback(base_host) and (listen_host is None or is_loopback(listen_host))
        if self.env != "development" or not local:
            where = f"serving on {listen_host}" if listen_host is not None else ""
            where = where or f"links go to {self.web.base_url}"
            raise ConfigError(
                f"web.secret_key {problem}, and {where}: anyone could forge the links of "
                f"every email (unsubscribe, preferences, clicks). {_SECRET_FIX}"
            )
        return (
            f"web.secret_key {problem}: acceptable only because this is development on "
            f"loopback; anyone who knows it can forge links. {_SECRET_FIX}"
        )

    def check_urls(self) -> None:
        """In production the links in emails are https: they carry readers' signed tokens."""
        if self.env != "production":
            return
        for section, key in (("web", "base_url"), ("render", "site_url")):
            value = getattr(getattr(self, section), key)
            if value and not value.lower().startswith("https://"):
                raise ConfigError(
                    f"{section}.{key} (DIGEST_{section.upper()}__{key.upper()}) must be an "
                    "https:// URL in production"
                )


_SECRET_FIX = f"set DIGEST_WEB__SECRET_KEY to a random value, e.g. the output of `{SECRET_HOWTO}`"


def secret_problem(secret: str) -> str | None:
    """What makes `secret` unfit to sign links (a placeholder, too short), or None."""
    if secret.strip().lower() in PLACEHOLDER_SECRETS:
        return "is a placeholder"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1), bracketed or not."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(
    path: str | Path | None = None,
    overrides: Mapping[str, str] | None = None,
    *,
    require_file: bool = False,
) -> Settings:
    """Load settings once: file < environment < overrides (`section.key` -> value).

    Without an explicit path or DIGEST_CONFIG, a missing ./settings.toml means built-in
    defaults; an explicitly named file must exist.
    """
    chosen = config_path(path)
    explicit = bool(path) or bool(os.environ.get("DIGEST_CONFIG"))
    file_data: dict[str, Any] = {}
    if chosen.exists() or explicit or require_file:
        file_data = read_toml(chosen)
    init = nest(overrides or {})
    check_sections(Settings.model_fields, chosen, file_data, init, os.environ)

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, DictSource(settings_cls, file_data))

    try:
        loaded = _Loaded(**init)
    except ValidationError as exc:
        raise ConfigError(describe(exc, chosen)) from None
    settings = Settings.model_validate(loaded.model_dump())
    settings.check_secrets()
    settings.check_urls()
    return settings
