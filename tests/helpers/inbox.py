"""What comes back to a bounce mailbox, built as the MTAs and mailbox providers write it: a
DSN hard bounce (RFC 3464), an ARF complaint (RFC 5965), an out-of-office auto-reply
(RFC 3834) and a person's note that nothing can classify."""

from __future__ import annotations

from digest.db.models import Delivery

_REPORTED = (
    "From: Digest <news@news.example.org>\r\n"
    "To: {to}\r\n"
    "Subject: =?utf-8?b?2KfZhNmG2LTYsdip?=\r\n"
    "Message-ID: {message_id}\r\n"
    "List-Id: <daily.news.example.org>\r\n"
)


def hard_bounce(delivery: Delivery, to: str, *, verp: str = "") -> bytes:
    """Postfix's DSN: `to` does not exist (5.1.1), the digest's headers returned. `verp`:
    the b- address the bounce was sent to (as the MTA's Delivered-To records it)."""
    delivered = f"Delivered-To: {verp}\r\n" if verp else ""
    return (
        f"Return-Path: <>\r\n{delivered}"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: {verp or 'news@news.example.org'}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn.{delivery.id}@mx.example.net>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {to}\r\n"
        f"Original-Recipient: rfc822; {to}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <" + to + ">: Recipient address rejected: "
        "User unknown in virtual mailbox table\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + _REPORTED.format(to=to, message_id=delivery.message_id)
        + "\r\n--B--\r\n"
    ).encode()


def complaint(delivery: Delivery, to: str) -> bytes:
    """Yahoo's feedback-loop report: `to` marked the digest as spam."""
    return (
        "From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>\r\n"
        "To: abuse@news.example.org\r\n"
        "Subject: FW: Spam complaint\r\n"
        f"Message-ID: <arf.{delivery.id}@arf.mail.yahoo.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="A"\r\n'
        "\r\n--A\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "\r\n--A\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {to}\r\n"
        "\r\n--A\r\nContent-Type: message/rfc822\r\n\r\n"
        + _REPORTED.format(to=to, message_id=delivery.message_id)
        + "\r\nthe digest\r\n\r\n--A--\r\n"
    ).encode()


def auto_reply(to: str) -> bytes:
    """An out-of-office answer from `to` (RFC 3834 Auto-Submitted)."""
    return (
        f"From: {to}\r\nTo: news@news.example.org\r\n"
        "Subject: Out of office: the daily digest\r\n"
        f"Message-ID: <ooo.{to}>\r\n"
        "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n"
        "\r\nI am away until Sunday.\r\n"
    ).encode()


def personal_note() -> bytes:
    """A person writing to the bounce address: nothing to classify, a person should read it."""
    return (
        b"From: Huda <huda@example.com>\r\nTo: postmaster@news.example.org\r\n"
        b"Subject: A question about the newsletter\r\n"
        b"Message-ID: <note.1@example.com>\r\n"
        b"\r\nHello, could you tell me when the weekly edition comes out?\r\n"
    )
