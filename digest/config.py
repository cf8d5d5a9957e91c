"""Typed settings: settings.toml < DIGEST_* environment variables < command-line overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.errors import ConfigError
from digest.text.placeholders import placeholder_problems

DEFAULT_CONFIG = Path("settings.toml")
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "placeholder"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = "sqlite:///./var/digest.sqlite3"


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
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


class SenderSettings(_Section):
    from_name: str = "النشرة اليومية"
    from_address: str = "digest@news.example.org"
    reply_to: str = ""
    list_id_domain: str = "news.example.org"
    feedback_id: str = Field("newsdigest", min_length=5, max_length=15)
    postal_address: str = ""
    unsubscribe_address: str = ""


class DkimSettings(_Section):
    """DKIM signing; an empty private_key_path disables it."""

    selector: str = ""
    domain: str = ""
    private_key_path: str = ""


class WebSettings(_Section):
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = "change-me"
    host: str = "127.0.0.1"
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

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
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
    publisher_name: str = "أخبار المثال"
    publisher_name_en: str = ""
    site_url: str = ""
    max_html_bytes: int = Field(100_000, ge=20_000, le=102_000)

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
        return value.rstrip("/")


class IngestSettings(_Section):
    timeout: float = Field(20.0, gt=0, le=600)
    max_bytes: int = Field(10_000_000, ge=1_000, le=1_000_000_000)
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

    def check_secrets(self) -> None:
        """Refuse placeholder secrets outside development, naming the variable to set."""
        if self.env == "development":
            return
        if self.web.secret_key.strip().lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(
                "web.secret_key is a placeholder: set DIGEST_WEB__SECRET_KEY to a long random "
                "value (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.smtp.username and not self.smtp.password:
            raise ConfigError("smtp.username is set but no password: set DIGEST_SMTP__PASSWORD")


class _DictSource(PydanticBaseSettingsSource):
    """Feeds the parsed TOML file into pydantic-settings as the lowest-priority source."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"settings file {path} not found (use --config or DIGEST_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None


def parse_override(text: str) -> tuple[list[str], str]:
    """`smtp.port=2525` -> (["smtp", "port"], "2525")."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    return key.strip().split("."), value


def _nest(overrides: Mapping[str, str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def config_path(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("DIGEST_CONFIG"):
        return Path(environ["DIGEST_CONFIG"])
    return DEFAULT_CONFIG


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
        file_data = _read_toml(chosen)
    init = _nest(overrides or {})

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
            return (init_settings, env_settings, _DictSource(settings_cls, file_data))

    try:
        loaded = _Loaded(**init)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, chosen)) from None
    settings = Settings.model_validate(loaded.model_dump())
    settings.check_secrets()
    return settings


def _describe(exc: ValidationError, path: Path) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env_name = "DIGEST_" + "__".join(str(part).upper() for part in error["loc"])
        problems.append(f"{key} ({env_name}): {error['msg']}")
    return f"invalid settings (from {path} and the environment): " + "; ".join(problems)
