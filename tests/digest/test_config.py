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
