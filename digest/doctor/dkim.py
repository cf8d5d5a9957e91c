"""The DKIM keys: readable, accepted by the signer the send path uses (digest/send/dkim.py:
RSA of 2048 bits or more, or Ed25519), and each compared with the record DNS publishes at
`selector._domainkey.domain` (digest/doctor/key_records.py); the second key too when one is
set. A key that is not published yet, or a lookup DNS does not answer, is a warning with the
exact record to publish; a published record that does not match the key is a failure: every
signature made with that key would fail at the receivers."""

from __future__ import annotations

import dns.exception

from digest.config import Settings
from digest.doctor.key_records import (
    LOOKUP_SECONDS,
    KeyRecord,
    Lookup,
    key_record_name,
    lookup_txt,
    make_resolver,
    parse_key_record,
)
from digest.doctor.report import Check, overall
from digest.errors import ConfigError
from digest.send.dkim import DkimKey, configured_keys, dns_record

NAME = "dkim"
MAKE_KEY = "digest dkim keygen --selector SELECTOR"
NAMESERVER_FIX = "dkim.nameserver names the DNS server doctor asks (empty: the system's)"


def dkim_check(settings: Settings, *, lifetime: float = LOOKUP_SECONDS) -> Check:
    """ok when every key is readable and published as it is; fail for a key the signer
    refuses or a published record that does not match it; warn when DKIM is off, a key is
    not published yet or DNS does not answer (within `lifetime` seconds a lookup)."""
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
    readable = f"{len(keys)} key(s) readable"
    try:
        resolver = make_resolver(dkim.nameserver, lifetime)
    except dns.exception.DNSException as exc:
        published = "; ".join(f"publish {key.record()}" for key in keys)
        return Check.warn(
            NAME,
            f"{readable}, but no DNS resolver to look up their records ({exc}); {published}",
            f"check the records are published; {NAMESERVER_FIX}",
        )
    settings_paths = [
        ("dkim.private_key_path", dkim.private_key_path),
        ("dkim.second_private_key_path", dkim.second_private_key_path),
    ]
    findings = [
        _compare(key, lookup_txt(resolver, key_record_name(key.selector, key.domain)), *where)
        for key, where in zip(keys, settings_paths, strict=False)
    ]
    status = overall(findings)
    detail = "; ".join([readable, *(finding.detail for finding in findings)])
    fix = "; ".join(finding.fix for finding in findings if finding.fix)
    return Check(NAME, status, detail, fix if status != "ok" else "")


def _compare(key: DkimKey, found: Lookup, setting: str, path: str) -> Check:
    """What the TXT records `found` at the key's name mean for signatures made with `key`."""
    name = key_record_name(key.selector, key.domain)
    publish = f"publish {key.record()}"
    if found.error:
        return Check.warn(
            NAME,
            f"could not look up {name} ({found.error}): {publish}",
            f"check the record is published once DNS answers; {NAMESERVER_FIX}",
        )
    if not found.texts:
        return Check.warn(NAME, f"{name} is not published yet (no TXT record): {publish}", publish)
    records, problems = _key_records(found.texts)
    fails = "receivers will fail every signature"
    if not records:
        return Check.fail(
            NAME,
            f"the TXT record at {name} is not a DKIM key record ({problems[0]}): {fails}",
            publish,
        )
    if len(records) > 1:
        return Check.fail(
            NAME,
            f"{len(records)} DKIM key records at {name}: receivers may take either, ambiguous",
            f"keep one TXT record there: {key.record()}",
        )
    [record] = records
    if not record.public:
        return Check.fail(
            NAME,
            f"the TXT record at {name} revokes its key (empty p=): {fails} made with "
            f"{setting} ({path})",
            f"{publish}, or sign with a key that is not revoked",
        )
    ours = parse_key_record(dns_record(key.key))
    if record != ours:
        holds = f"a different public key than {setting} ({path})"
        if record.kind != ours.kind:
            holds = f"a k={record.kind} key but {setting} ({path}) is an {ours.kind} key"
        return Check.fail(
            NAME,
            f"the TXT record at {name} holds {holds}: {fails}",
            f"{publish}, or point {setting} at the key whose public half is published",
        )
    return Check.ok(NAME, f"{name} published and matching")


def _key_records(texts: tuple[str, ...]) -> tuple[list[KeyRecord], list[str]]:
    """The TXT records that read as DKIM key records, and why the others do not."""
    records: list[KeyRecord] = []
    problems: list[str] = []
    for text in texts:
        try:
            records.append(parse_key_record(text))
        except ValueError as exc:
            problems.append(str(exc))
    return records, problems


def _fix(problem: str) -> str:
    if "cannot be read" in problem:
        return "fix the path or the file's permissions (the user digest runs as must read it)"
    if "selector" in problem and ("empty" in problem or "host name" in problem):
        return "set dkim.selector (and dkim.second_selector for a second key) to a DNS label"
    return f"make a new key: `{MAKE_KEY}`, publish its record, point the setting at it"
