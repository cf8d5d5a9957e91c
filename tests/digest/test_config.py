"""Settings: file < environment < --set flag; unsafe secrets refused outside development."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from tests.helpers.paths import ROOT


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_loads_with_documented_defaults() -> None:
    settings = load_settings(ROOT / "settings.toml")
    assert settings.env == "development"
    assert settings.database.url.startswith("sqlite:///")
    assert settings.digest.timezone == "Asia/Riyadh"
    assert settings.digest.hour == 7
    assert settings.digest.locale == "ar"


def test_every_key_in_shipped_file_has_a_comment() -> None:
    lines = (ROOT / "settings.toml").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[number - 1].lstrip().startswith("#"), f"no comment above: {line}"


def test_precedence_file_then_env_then_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path, '[smtp]\nhost = "file.example"\nport = 2500\n[web]\nbase_url = "https://file"\n'
    )
    assert load_settings(path).smtp.host == "file.example"
    monkeypatch.setenv("DIGEST_SMTP__HOST", "env.example")
    monkeypatch.setenv("DIGEST_WEB__BASE_URL", "https://env/")
    settings = load_settings(path)
    assert settings.smtp.host == "env.example"
    assert settings.smtp.port == 2500  # untouched keys keep the file's value
    assert settings.web.base_url == "https://env"
    flagged = load_settings(path, {"smtp.host": "flag.example"})
    assert flagged.smtp.host == "flag.example"
    assert flagged.web.base_url == "https://env"


def test_documented_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_ENV", "production")
    monkeypatch.setenv("DIGEST_DATABASE__URL", "sqlite:////tmp/x.db")
    monkeypatch.setenv("DIGEST_SMTP__PORT", "2525")
    monkeypatch.setenv("DIGEST_WEB__SECRET_KEY", "a-real-secret-of-some-length-1234567")
    monkeypatch.setenv("DIGEST_WEB__BASE_URL", "https://news.example.org")
    settings = load_settings(ROOT / "settings.toml")
    assert settings.env == "production"
    assert settings.database.url == "sqlite:////tmp/x.db"
    assert settings.smtp.port == 2525


def test_digest_config_env_picks_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_CONFIG", str(_write(tmp_path, "[digest]\nhour = 9\n")))
    assert load_settings().digest.hour == 9


def test_placeholder_secret_refused_in_production_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIGEST_ENV", "production")
    with pytest.raises(ConfigError, match="DIGEST_WEB__SECRET_KEY"):
        load_settings(ROOT / "settings.toml")


def test_placeholder_secret_accepted_in_development() -> None:
    assert load_settings(ROOT / "settings.toml").web.secret_key == "change-me"


def test_smtp_user_without_password_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_ENV", "production")
    monkeypatch.setenv("DIGEST_WEB__SECRET_KEY", "a-real-secret-of-some-length-1234567")
    monkeypatch.setenv("DIGEST_SMTP__USERNAME", "mailer")
    with pytest.raises(ConfigError, match="DIGEST_SMTP__PASSWORD"):
        load_settings(ROOT / "settings.toml")


def test_invalid_value_names_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SMTP__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"smtp\.port \(DIGEST_SMTP__PORT\)"):
        load_settings(ROOT / "settings.toml")


def test_bad_timezone_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"digest\.timezone"):
        load_settings(_write(tmp_path, '[digest]\ntimezone = "Mars/Olympus"\n'))


def test_missing_named_file_and_broken_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[smtp\nhost="))


def test_unknown_section_refused_naming_it_and_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A misspelt section used to be ignored: every value in it silently stayed the default.
    path = _write(tmp_path, '[smpt]\nhost = "relay.example.org"\n')
    with pytest.raises(ConfigError, match=r"unknown settings section 'smpt'.*smtp, sender"):
        load_settings(path)
    with pytest.raises(ConfigError, match=r"'enviroment'.*top-level keys: env"):
        load_settings(_write(tmp_path, 'enviroment = "production"\n'))
    with pytest.raises(ConfigError, match=r"'smpt' \(in --set\)"):
        load_settings(ROOT / "settings.toml", {"smpt.host": "x"})
    monkeypatch.setenv("DIGEST_SMPT__HOST", "relay.example.org")
    with pytest.raises(ConfigError, match=r"'smpt' \(in DIGEST_SMPT__HOST\)"):
        load_settings(ROOT / "settings.toml")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nonsense", "is not a database URL"),
        ("mysql://user:hunter2@db/x", "unsupported database"),
        ("postgres://user:hunter2@db/x", "unsupported database"),
        ("postgresql+asyncpg://user:hunter2@db/x", "unsupported driver 'asyncpg'"),
    ],
)
def test_database_url_validated_without_repeating_its_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"database\.url \(DIGEST_DATABASE__URL\)") as raised:
        load_settings(ROOT / "settings.toml", {"database.url": url})
    assert problem in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "database", ["sqlite:///var/x.sqlite3", "sqlite://", "postgresql+psycopg://u:p@db:5432/x"]
)
def test_supported_database_urls_load(database: str) -> None:
    assert load_settings(ROOT / "settings.toml", {"database.url": database}).database.url


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("web.base_url", "javascript:alert(1)", "absolute http"),
        ("web.base_url", "data:text/html,<b>x</b>", "absolute http"),
        ("web.base_url", "news.example.org", "absolute http"),
        ("web.base_url", "//news.example.org", "absolute http"),
        ("web.base_url", "https://", "must name a host"),
        ("web.base_url", "https://editor:pw@news.example.org", "user name or password"),
        ("web.base_url", "https://news.example.org/?ref=mail", "query"),
        ("web.base_url", "https://news.example.org/#top", "fragment"),
        ("web.base_url", "https://news.example.org:99999", "is not a URL"),
        ("web.base_url", "https://news example.org", "spaces"),
        ("render.site_url", "javascript:alert(1)", "absolute http"),
        ("render.site_url", "https://u:p@example.org", "user name or password"),
        ("sender.from_address", "digest-at-example.org", "email address"),
        ("sender.from_address", "نشرة@example.org", "email address"),
        ("sender.reply_to", "editors@example.org\r\nBcc: all@example.org", "email address"),
        ("sender.unsubscribe_address", "nobody", "email address"),
        ("sender.list_id_domain", "news example org", "host name"),
        ("sender.list_id_domain", "أخبار.example", "punycode"),
        ("dkim.domain", "-bad-.example.org", "host name"),
        ("dkim.selector", "sel ector", "host name"),
        ("smtp.host", "smtp.example.org:587", "host name"),
        ("web.host", "0.0.0.0 ", "host name"),
        ("ingest.user_agent", "digest\r\nX-Injected: 1", "control character (U+000D)"),
        ("sender.from_name", "النشرة\u202e", "control character (U+202E)"),
    ],
)
def test_urls_hosts_and_addresses_validated_at_load(key: str, value: str, problem: str) -> None:
    section, name = key.split(".")
    variable = rf"DIGEST_{section.upper()}__{name.upper()}"
    with pytest.raises(ConfigError, match=rf"{key} \({variable}\)") as raised:
        load_settings(ROOT / "settings.toml", {key: value})
    assert problem in str(raised.value)


def test_good_urls_hosts_and_addresses_load() -> None:
    settings = load_settings(
        ROOT / "settings.toml",
        {
            "web.base_url": "https://news.example.org/digest/",
            "render.site_url": "https://example.org/?from=digest",
            "sender.reply_to": "editors@example.org",
            "sender.from_address": "digest@bücher.de",  # an IDN domain goes out in punycode
            "dkim.domain": "xn--mgbh0fb.example",
            "smtp.host": "::1",
            "web.host": "0.0.0.0",
        },
    )
    assert settings.web.base_url == "https://news.example.org/digest"
    assert settings.render.site_url == "https://example.org/?from=digest"


def test_production_requires_https_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_ENV", "production")
    monkeypatch.setenv("DIGEST_WEB__SECRET_KEY", "a-real-secret-of-some-length-1234567")
    with pytest.raises(ConfigError, match=r"web\.base_url \(DIGEST_WEB__BASE_URL\).*https"):
        load_settings(ROOT / "settings.toml")
    monkeypatch.setenv("DIGEST_WEB__BASE_URL", "https://news.example.org")
    with pytest.raises(ConfigError, match=r"render\.site_url .*https"):
        load_settings(ROOT / "settings.toml", {"render.site_url": "http://example.org"})
    assert load_settings(ROOT / "settings.toml").web.base_url == "https://news.example.org"


def test_production_refuses_an_empty_postal_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_ENV", "production")
    monkeypatch.setenv("DIGEST_WEB__SECRET_KEY", "a-real-secret-of-some-length-1234567")
    monkeypatch.setenv("DIGEST_WEB__BASE_URL", "https://news.example.org")
    assert load_settings(ROOT / "settings.toml").brand.postal_address  # the sample has one
    monkeypatch.setenv("DIGEST_BRAND__POSTAL_ADDRESS", " ")
    with pytest.raises(ConfigError, match=r"brand\.postal_address is empty.*CAN-SPAM"):
        load_settings(ROOT / "settings.toml")
    monkeypatch.setenv("DIGEST_ENV", "development")
    assert load_settings(ROOT / "settings.toml").brand.postal_address == " "
