"""The DKIM keys: readable, accepted by the signer the send path uses (digest/send/dkim.py:
RSA of 2048 bits or more, or Ed25519), and each public half written out as the DNS TXT
record to publish at `selector._domainkey.domain`; the second key too when one is set."""

from __future__ import annotations

from digest.config import Settings
from digest.doctor.report import Check
from digest.errors import ConfigError
from digest.send.dkim import configured_keys

NAME = "dkim"
MAKE_KEY = "digest dkim keygen --selector SELECTOR"


def dkim_check(settings: Settings) -> Check:
    """ok with the TXT record(s) to publish; fail for a key the signer refuses; warn when
    DKIM is off."""
    dkim = settings.dkim
    if not dkim.private_key_path and not dkim.second_private_key_path:
        return Check.warn(
            NAME,
            "DKIM is off (dkim.private_key_path is empty): Gmail and Yahoo want bulk mail signed",
            f"make a key (`{MAKE_KEY}`), set dkim.selector and dkim.private_key_path, and "
            "publish the TXT record it prints",
        )
    try:
        keys = configured_keys(dkim, settings.sender)
    except ConfigError as exc:
        return Check.fail(NAME, str(exc), _fix(str(exc)))
    published = "; ".join(f"publish {key.record()}" for key in keys)
    return Check.ok(NAME, f"{len(keys)} key(s) readable; {published}")


def _fix(problem: str) -> str:
    if "cannot be read" in problem:
        return "fix the path or the file's permissions (the user digest runs as must read it)"
    if "selector" in problem and ("empty" in problem or "host name" in problem):
        return "set dkim.selector (and dkim.second_selector for a second key) to a DNS label"
    return f"make a new key: `{MAKE_KEY}`, publish its record, point the setting at it"
