"""The templates in use (the publisher's override folder over the built-ins), checked as
`digest templates check` checks them."""

from __future__ import annotations

from digest.config import Settings
from digest.doctor.report import Check
from digest.errors import DigestError
from digest.render.checks import check_templates

NAME = "templates"
SHOWN = 3  # problems named in the line; `digest templates check` lists them all


def templates_check(settings: Settings) -> Check:
    """fail on a fatal problem (one that stops a send or breaks the law), warn on others."""
    try:
        problems = check_templates(settings, None)
    except DigestError as exc:
        return Check.fail(NAME, str(exc), "run `digest templates check` and fix what it says")
    if not problems:
        return Check.ok(NAME, "every email template renders in both languages")
    fatal = [problem for problem in problems if problem.fatal]
    listed = fatal or problems
    shown = "; ".join(
        f"{problem.file}:{problem.line}: {problem.message}" for problem in listed[:SHOWN]
    )
    more = f" (and {len(listed) - SHOWN} more)" if len(listed) > SHOWN else ""
    fix = "run `digest templates check` and fix each problem it lists"
    if fatal:
        return Check.fail(NAME, f"{len(fatal)} problem(s) stop a send: {shown}{more}", fix)
    return Check.warn(NAME, f"{len(problems)} warning(s): {shown}{more}", fix)
