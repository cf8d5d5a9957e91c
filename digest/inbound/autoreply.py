"""Mail that a program wrote back, that is not a bounce: auto-replies and out-of-office notes
(RFC 3834 and the fields and subjects mail programs use instead), and challenge-response
systems asking the sender to prove they are human (BoxTrapper, TMDA, Spam Arrest, ...).

Neither ever counts as a bounce. Bounces themselves often carry `Auto-Submitted` and
mailing-list `Precedence: bulk`, so those fields are weak signals: they decide only when no
bounce format was found and the message does not come from a mailer daemon. Explicit
auto-reply fields and out-of-office subjects are strong: they decide before the bounce
heuristics look at the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.db.models import InboundKind
from digest.inbound.detectors import explanation
from digest.inbound.message import Mail

__all__ = ["Automatic", "bounce_like", "read_automatic"]

_OUT_OF_OFFICE = re.compile(
    r"out of (?:the )?office|automatic reply|auto[- ]?(?:reply|response|responder)|"
    r"automated (?:reply|response)|away from (?:the |my )?(?:office|desk)|on vacation|"
    r"vacation (?:reply|message|notice|response)|on (?:annual |parental |sick )?leave|"
    r"i am away|i'm away|currently away|absence du bureau|absent du bureau|"
    r"r[ée]ponse automatique|abwesenheitsnotiz|automatische antwort|"
    r"respuesta autom[áa]tica|fuera de la oficina|risposta automatica|fuori ufficio|"
    r"resposta autom[áa]tica|fora do escrit[óo]rio|automatisch antwoord|otomatik yan[ıi]t|"
    r"خارج المكتب|رد تلقائي|الرد التلقائي|رد [اآ]لي|الرد ال[اآ]لي|"
    r"غياب عن المكتب|پاسخ خودکار",
    re.I,
)
_CHALLENGE_SUBJECT = re.compile(
    r"please confirm (?:your|the|this|that)|confirm your (?:e-?mail|message|address)|"
    r"verify your (?:e-?mail|message|address)|verification (?:required|request|needed)|"
    r"requires? verification|sender verification|verify#|challenge|spam ?arrest|"
    r"awaiting (?:your )?(?:verification|confirmation)|confirmation requested",
    re.I,
)
_CHALLENGE_TEXT = re.compile(
    r"challenge[- ]response|(?:confirm|prove|verify) (?:that )?you are (?:a )?(?:human|real|"
    r"not a (?:robot|spammer|machine))|(?:real|live) person(?:,| and) not a (?:robot|program)|"
    r"spam ?arrest|boxtrapper|tmda|mailblocks|bluebottle",
    re.I,
)
_CHALLENGE_FIELDS = ("x-boxtrapper", "x-tmda", "x-spamarrest", "x-spam-arrest", "x-mailblocks")
_CHALLENGE_FIELD_PREFIXES = (*_CHALLENGE_FIELDS, "x-challenge", "x-bluebottle")
_AUTO_FIELD = re.compile(r"^x-auto-?(?:reply|respond|responder|response-from)|vacation")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|not (?:be )?delivered|delivery (?:status|fail|failure|notification|problem|"
    r"report|has failed)|failure notice|failed delivery|returned mail|returned to sender|"
    r"mail delivery (?:failed|system|subsystem)|non[- ]?delivery|delayed mail|mail error|"
    r"delivery error|can ?not be delivered|could not be delivered|"
    r"delivery delayed|message delayed|bounce|تعذر التسليم|تعذر تسليم|فشل التسليم|"
    r"لم يتم التسليم",
    re.I,
)
# A bounce's own words: such a text is never taken for an auto-reply on weak signals.
_BOUNCE_TEXT = re.compile(
    r"(?:could|can) ?not be delivered|undeliverable|delivery (?:has )?failed|permanent error|"
    r"user unknown|no such (?:user|mailbox)|mailbox (?:unavailable|not found)|"
    r"not delivered to the following",
    re.I,
)
_DAEMONS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon"}
)


@dataclass(frozen=True, slots=True)
class Automatic:
    """An automatic answer: AUTO_REPLY or CHALLENGE, how sure (`strong`), and why."""

    kind: InboundKind
    strong: bool
    reason: str


def bounce_like(mail: Mail) -> bool:
    """From a mailer daemon, a bounce's subject, or Exim's failed-recipients field."""
    sender = mail.header("from", 400).lower()
    local = sender.rpartition("@")[0].rpartition("<")[2].strip().strip('"')
    if local in _DAEMONS or "mail delivery s" in sender or sender.endswith("<>"):
        return True
    return bool(_BOUNCE_SUBJECT.search(mail.header("subject", 400))) or mail.has(
        "x-failed-recipients"
    )


def read_automatic(mail: Mail) -> Automatic | None:
    """Whether a program wrote this in answer to our mail, and how sure that is."""
    names = {key.lower() for key, _value in mail.msg.raw_items()}
    challenge_field = next((n for n in names if n.startswith(_CHALLENGE_FIELD_PREFIXES)), None)
    if challenge_field is None and "tmda" in mail.header("x-delivery-agent", 100).lower():
        challenge_field = "x-delivery-agent"
    if challenge_field is not None:
        return Automatic(InboundKind.CHALLENGE, True, f"challenge-response ({challenge_field})")
    if bounce_like(mail):
        return None  # a daemon's notice: a bounce format, or unknown, never an auto-reply
    subject = mail.header("subject", 400)
    if _CHALLENGE_SUBJECT.search(subject):
        return Automatic(InboundKind.CHALLENGE, True, "challenge-response (subject)")
    strong = _strong_signal(mail, names, subject)
    if strong is not None:
        return Automatic(InboundKind.AUTO_REPLY, True, strong)
    text = explanation(mail.msg)[:5000]
    if _CHALLENGE_TEXT.search(text):
        return Automatic(InboundKind.CHALLENGE, True, "challenge-response (text)")
    weak = _weak_signal(mail)
    if weak is None or _BOUNCE_TEXT.search(text):
        return None
    return Automatic(InboundKind.AUTO_REPLY, False, weak)


def _strong_signal(mail: Mail, names: set[str], subject: str) -> str | None:
    auto_field = next((n for n in sorted(names) if _AUTO_FIELD.search(n)), None)
    if auto_field is not None and mail.header(auto_field, 40).lower() not in ("no", "false"):
        return f"auto-reply ({auto_field})"
    precedence = mail.header("precedence", 40).lower().replace("-", "_")
    if precedence == "auto_reply":
        return "auto-reply (Precedence: auto_reply)"
    if mail.header("auto-submitted", 60).lower().startswith("auto-replied"):
        return "auto-reply (RFC 3834 Auto-Submitted: auto-replied)"
    if _OUT_OF_OFFICE.search(subject):
        return "auto-reply (out-of-office subject)"
    return None


def _weak_signal(mail: Mail) -> str | None:
    submitted = mail.header("auto-submitted", 60).lower()
    if submitted and not submitted.startswith("no"):
        return f"automatic message (Auto-Submitted: {submitted.split(';')[0]})"
    if mail.has("x-auto-response-suppress"):
        return "automatic message (X-Auto-Response-Suppress)"
    if mail.header("precedence", 40).lower() in ("bulk", "junk", "list"):
        return "automatic message (Precedence)"
    return None
