"""The settings themselves: do they load, is the key that signs every link a secret, and
does every email carry the postal address the law asks for."""

from __future__ import annotations

from collections.abc import Callable

from digest.config import (
    MIN_SECRET_BYTES,
    POSTAL_ADDRESS_WHY,
    SECRET_HOWTO,
    Settings,
    secret_problem,
)
from digest.doctor.report import Check
from digest.errors import ConfigError

SECRET_FIX = f"set DIGEST_WEB__SECRET_KEY to the output of `{SECRET_HOWTO}`"


def load_check(load: Callable[[], Settings]) -> tuple[Check, Settings | None]:
    """Load the settings; a ConfigError is the failure, with its message (which names the
    setting and the file)."""
    try:
        settings = load()
    except ConfigError as exc:
        return Check.fail("settings", str(exc), "correct the setting named above"), None
    return Check.ok("settings", f"loaded ({settings.env})"), settings


def secret_check(settings: Settings) -> Check:
    """web.secret_key signs unsubscribe, preference and click links: not a placeholder and
    at least MIN_SECRET_BYTES long, except in development on loopback (a warning)."""
    name = "secret key"
    problem = secret_problem(settings.web.secret_key)
    if problem is None:
        return Check.ok(name, f"web.secret_key is set and at least {MIN_SECRET_BYTES} bytes")
    if settings.env == "production":
        return Check.fail(name, f"web.secret_key {problem} in production", SECRET_FIX)
    try:
        settings.link_secret_warning()
    except ConfigError:  # links leave this machine: anyone could forge them
        detail = f"web.secret_key {problem}, and links go to {settings.web.base_url}"
        return Check.fail(name, detail, SECRET_FIX)
    detail = f"web.secret_key {problem}: acceptable only in development on loopback"
    return Check.warn(name, detail, SECRET_FIX)


def postal_address_check(settings: Settings) -> Check:
    """brand.postal_address goes in every footer; production refuses to load without it,
    development only warns (the demo and tests run without one)."""
    name = "postal address"
    fix = "set [brand] postal_address (and postal_address_en for English emails)"
    if not settings.brand.postal_address.strip():
        return Check.warn(name, f"brand.postal_address is empty: {POSTAL_ADDRESS_WHY}", fix)
    return Check.ok(name, "brand.postal_address is in every footer")
