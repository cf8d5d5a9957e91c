"""doctor's settings checks: loading, and the key that signs links."""

from __future__ import annotations

from digest.config import Settings
from digest.doctor.configuration import load_check, postal_address_check, secret_check
from digest.errors import ConfigError
from tests.helpers.doctor import tweak

GOOD_SECRET = "x" * 48


def test_settings_that_load_are_ok(settings: Settings) -> None:
    check, loaded = load_check(lambda: settings)
    assert (check.status, loaded) == ("ok", settings)


def test_a_config_error_is_the_failure_with_its_message() -> None:
    def load() -> Settings:
        raise ConfigError("settings.toml: smtp.port: must be at most 65535")

    check, loaded = load_check(load)
    assert loaded is None
    assert check.status == "fail"
    assert check.detail == "settings.toml: smtp.port: must be at most 65535"


def test_a_placeholder_secret_in_production_fails(settings: Settings) -> None:
    production = tweak(settings, top={"env": "production"})
    check = secret_check(production)
    assert check.status == "fail"
    assert "placeholder" in check.detail
    assert "DIGEST_WEB__SECRET_KEY" in check.fix


def test_a_short_secret_in_production_fails(settings: Settings) -> None:
    check = secret_check(tweak(settings, top={"env": "production"}, web={"secret_key": "short"}))
    assert check.status == "fail"
    assert "shorter than 32 bytes" in check.detail


def test_a_placeholder_in_development_on_loopback_warns(settings: Settings) -> None:
    check = secret_check(settings)  # settings.toml: change-me, http://127.0.0.1:8000
    assert check.status == "warn"
    assert "DIGEST_WEB__SECRET_KEY" in check.fix


def test_a_placeholder_in_development_with_public_links_fails(settings: Settings) -> None:
    public = tweak(settings, web={"base_url": "https://news.example.org"})
    assert secret_check(public).status == "fail"


def test_a_long_random_secret_is_ok(settings: Settings) -> None:
    production = tweak(settings, top={"env": "production"}, web={"secret_key": GOOD_SECRET})
    assert secret_check(production).status == "ok"


def test_an_empty_postal_address_warns_and_a_set_one_is_ok(settings: Settings) -> None:
    empty = postal_address_check(tweak(settings, brand={"postal_address": ""}))
    assert (empty.status, empty.name) == ("warn", "postal address")
    assert "CAN-SPAM" in empty.detail and "[brand] postal_address" in empty.fix
    given = tweak(settings, brand={"postal_address": "P.O. Box 1, Riyadh"})
    assert postal_address_check(given).status == "ok"
