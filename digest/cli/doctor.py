"""`digest doctor`: what stands between this installation and its first send."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import print_json
from digest.cli.terminal import plain
from digest.config import Settings, load_settings, parse_override


def run(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document (checks and overall status).")
    ] = False,
) -> None:
    """Check settings, database, SMTP relay, web address, secrets, DKIM, sender domains,
    time zones and templates: one line each, ok/warn/fail with the fix. Exit code 1 when
    any check fails.

    Example: digest doctor --json
    """
    # Imported here: the checks' libraries (cryptography, httpx) load only for doctor.
    from digest.doctor.report import as_document, as_line, overall
    from digest.doctor.runner import diagnose

    # Settings are loaded here, not taken from the root command: doctor reports settings
    # that do not load as its first check (the root command lets doctor through).
    root = ctx.find_root().params
    config: Path | None = root.get("config")
    overrides: list[str] = root.get("overrides") or []

    def load() -> Settings:
        pairs = dict((".".join(keys), value) for keys, value in map(parse_override, overrides))
        return load_settings(config, pairs)

    checks = diagnose(load)
    if as_json:
        print_json(as_document(checks))
    else:
        for check in checks:
            typer.echo(plain(as_line(check)))
    if overall(checks) == "fail":
        raise typer.Exit(1)
