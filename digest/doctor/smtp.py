"""The SMTP relay, asked as the send path will ask it: connect, EHLO, STARTTLS when
configured, AUTH when a login is configured, a MAIL FROM with the envelope sender (then
RSET: nothing is sent), and the SIZE limit against the biggest digest."""

from __future__ import annotations

import contextlib
import math
import ssl

import aiosmtplib

from digest.config import Settings, SmtpSettings, is_loopback
from digest.doctor.alignment import envelope_sender
from digest.doctor.report import Check
from digest.errors import InvalidInput
from digest.send.addresses import smtp_address

MAX_WAIT_SECONDS = 10.0  # doctor answers in seconds, whatever smtp.timeout allows a send
HEADER_HEADROOM = 16_384  # headers, MIME boundaries and the DKIM signature
# Every way a step can go wrong: SMTP replies and hang-ups, timeouts, refused connections and
# TLS errors (ssl.SSLError is an OSError).
_TROUBLE = (aiosmtplib.SMTPException, OSError)


class _Stop(Exception):
    """A step failed in a way that makes the later steps meaningless."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.detail)
        self.check = check


def biggest_message(settings: Settings) -> int:
    """Bytes on the wire of the biggest digest the renderer lets through: the HTML at
    render.max_html_bytes and a plain-text twin as big, each base64 in 76-character lines,
    and headroom for the headers."""
    base64_lines = math.ceil(settings.render.max_html_bytes / 3) * 4 * 78 // 76
    return 2 * base64_lines + HEADER_HEADROOM


async def smtp_checks(settings: Settings, tls_context: ssl.SSLContext | None = None) -> list[Check]:
    """One Check per step; a failed connection or TLS upgrade ends the list there.
    `tls_context` replaces the default certificate checks (a private CA, tests)."""
    smtp = settings.smtp
    if smtp.tls and smtp.starttls:
        return [
            Check.fail(
                "smtp",
                "smtp.tls and smtp.starttls are both true",
                "tls=true for implicit TLS (port 465) or starttls=true (port 587/25), not both",
            )
        ]
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        use_tls=smtp.tls,
        start_tls=False,  # done by hand below, to report it
        timeout=min(smtp.timeout, MAX_WAIT_SECONDS),
        tls_context=tls_context,
    )
    checks: list[Check] = []
    try:
        checks.append(await _connect(client, smtp))
        checks.append(await _tls(client, smtp, tls_context))
        checks.append(await _auth(client, smtp))
        checks.append(_size(client, settings))
        checks.append(await _sender(client, settings))
    except _Stop as stop:
        checks.append(stop.check)
    finally:
        await _quit(client)
    return checks


async def _connect(client: aiosmtplib.SMTP, smtp: SmtpSettings) -> Check:
    where = f"{smtp.host}:{smtp.port}"
    try:
        await client.connect()
    except _TROUBLE as exc:
        detail = f"cannot connect to {where}: {_why(exc)}"
        raise _Stop(Check.fail("smtp", detail, _fix(exc))) from None
    try:
        await client.ehlo()
    except aiosmtplib.SMTPResponseException as exc:
        try:
            await client.helo()
        except aiosmtplib.SMTPException as helo_exc:
            raise _Stop(
                Check.fail("smtp", f"{where} refused EHLO and HELO: {_why(helo_exc)}", _fix(exc))
            ) from None
        return Check.warn(
            "smtp",
            f"{where} refused EHLO ({exc.code}), answered HELO: no STARTTLS, AUTH or SIZE",
            "use a relay that speaks ESMTP (EHLO)",
        )
    except _TROUBLE as exc:
        detail = f"{where} failed at EHLO: {_why(exc)}"
        raise _Stop(Check.fail("smtp", detail, _fix(exc))) from None
    return Check.ok("smtp", f"connected to {where}, EHLO accepted")


async def _tls(
    client: aiosmtplib.SMTP, smtp: SmtpSettings, context: ssl.SSLContext | None
) -> Check:
    name = "smtp tls"
    offered = client.supports_extension("starttls")
    if smtp.tls:
        return Check.ok(name, "implicit TLS (smtp.tls), certificate checked")
    if not smtp.starttls:
        if is_loopback(smtp.host):
            return Check.ok(name, "plain SMTP to a relay on this machine")
        if offered:
            return Check.warn(
                name,
                "the server offers STARTTLS but smtp.starttls is false: mail and the password "
                "cross the network in clear",
                "set smtp.starttls = true",
            )
        return Check.warn(
            name,
            "no TLS: mail and the password cross the network in clear",
            "use a relay with STARTTLS (smtp.starttls = true) or TLS (smtp.tls = true, port 465)",
        )
    if not offered:
        raise _Stop(
            Check.fail(
                name,
                "smtp.starttls is true but the server does not offer STARTTLS",
                "enable STARTTLS on the relay, or use implicit TLS (smtp.tls = true, port 465)",
            )
        )
    try:
        await client.starttls(tls_context=context)
        await client.ehlo()
    except _TROUBLE as exc:
        raise _Stop(Check.fail(name, f"STARTTLS failed: {_why(exc)}", _fix(exc))) from None
    return Check.ok(name, "STARTTLS offered and used, certificate checked")


async def _auth(client: aiosmtplib.SMTP, smtp: SmtpSettings) -> Check:
    name = "smtp auth"
    if not smtp.username:
        return Check.ok(name, "no login configured (smtp.username is empty)")
    if not client.supports_extension("auth"):
        raise _Stop(
            Check.fail(
                name,
                f"smtp.username is {smtp.username!r} but the server offers no AUTH here",
                "enable AUTH on the relay (many offer it only after STARTTLS: smtp.starttls)",
            )
        )
    try:
        await client.login(smtp.username, smtp.password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise _Stop(
            Check.fail(
                name,
                f"the server refused the login of {smtp.username!r} ({exc.code} {exc.message})",
                "check smtp.username and DIGEST_SMTP__PASSWORD",
            )
        ) from None
    except aiosmtplib.SMTPException as exc:
        raise _Stop(Check.fail(name, f"AUTH failed: {_why(exc)}", _fix(exc))) from None
    return Check.ok(name, f"login of {smtp.username!r} accepted")


def _size(client: aiosmtplib.SMTP, settings: Settings) -> Check:
    name = "smtp size"
    needed = biggest_message(settings)
    if not client.supports_extension("size"):
        return Check.warn(
            name,
            f"the server does not advertise SIZE; the biggest digest is about {needed:,} bytes",
            f"make sure the relay takes messages of {needed:,} bytes or more",
        )
    declared = client.esmtp_extensions.get("size", "").strip()
    limit = int(declared) if declared.isdigit() else 0
    if limit == 0:  # RFC 1870: SIZE 0 (or no number) means no fixed limit
        return Check.ok(name, "the server sets no fixed size limit")
    if limit < needed:
        return Check.fail(
            name,
            f"the server takes at most {limit:,} bytes; the biggest digest is about {needed:,}",
            "raise the relay's message size limit (Postfix: message_size_limit), or lower "
            "render.max_html_bytes",
        )
    return Check.ok(name, f"the server takes {limit:,} bytes; the biggest digest is {needed:,}")


async def _sender(client: aiosmtplib.SMTP, settings: Settings) -> Check:
    name = "smtp sender"
    utf8 = client.supports_extension("smtputf8")
    try:
        sender = smtp_address(envelope_sender(settings), utf8)
    except InvalidInput as exc:
        return Check.fail(name, str(exc), "use an ASCII sender.from_address, or an SMTPUTF8 relay")
    options = [] if sender.isascii() else ["SMTPUTF8"]
    try:
        await client.mail(sender, options=options, encoding="utf-8" if options else "ascii")
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code == 530:
            return Check.fail(
                name,
                f"the server wants a login before MAIL FROM ({exc.code} {exc.message})",
                "set smtp.username and DIGEST_SMTP__PASSWORD",
            )
        check = Check.fail if exc.code >= 500 else Check.warn
        return check(
            name,
            f"the server refused MAIL FROM:<{sender}> ({exc.code} {exc.message})",
            "allow this envelope sender on the relay (sender.from_address, inbound.domain)",
        )
    with contextlib.suppress(aiosmtplib.SMTPException):  # MAIL's answer is what we came for
        await client.rset()
    return Check.ok(name, f"MAIL FROM:<{sender}> accepted (then reset: nothing sent)")


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def _why(error: BaseException) -> str:
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return f"{error.code} {error.message}"
    if isinstance(error, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "no answer in time"
    cause = error.__cause__
    if isinstance(error, aiosmtplib.SMTPConnectError) and isinstance(cause, OSError):
        return cause.strerror or str(cause)  # "Connection refused", not the message around it
    if isinstance(error, aiosmtplib.SMTPException):
        return error.message
    return str(error) or type(error).__name__


def _fix(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) or "certificate" in str(error).lower():
        return "the relay's certificate must be valid for smtp.host (check smtp.tls/starttls)"
    if isinstance(error, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "check smtp.host and smtp.port, and that a firewall lets the connection through"
    return "check smtp.host and smtp.port, and that the relay is running"
