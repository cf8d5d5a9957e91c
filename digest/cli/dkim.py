"""`digest dkim`: make a signing key and print the DNS TXT record(s) to publish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import app_context, fail
from digest.cli.terminal import plain
from digest.send.dkim import (
    KINDS,
    MIN_RSA_BITS,
    RSA_BITS,
    check_selector,
    configured_keys,
    generate_key,
    txt_record,
    write_private_key,
)

app = typer.Typer(
    help="DKIM keys and their DNS records.\n\nExample: digest dkim keygen --selector s2026",
    no_args_is_help=True,
)


@app.command()
def keygen(
    ctx: typer.Context,
    selector: Annotated[str, typer.Option("--selector", help="The key's selector (s=).")],
    algorithm: Annotated[str, typer.Option("--algorithm", help="rsa or ed25519.")] = "rsa",
    bits: Annotated[
        int | None, typer.Option("--bits", help="RSA key size: 2048 (default), 3072 or 4096.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Key file to write (default dkim-SELECTOR.pem).")
    ] = None,
) -> None:
    """Write a new private key (PKCS#8 PEM, mode 0600, never over an existing file) and print
    the TXT record to publish for it. Point dkim.selector and dkim.private_key_path (or the
    second_ pair) at it once the record is in DNS.

    Example: digest dkim keygen --selector ed2026 --algorithm ed25519 --out /etc/digest/ed.pem
    """
    settings = app_context(ctx).settings
    if algorithm not in KINDS:
        raise fail(f"--algorithm {algorithm!r} is not one of {', '.join(KINDS)}", code=2)
    if bits is not None and (algorithm != "rsa" or bits not in RSA_BITS):
        sizes = ", ".join(map(str, RSA_BITS))
        raise fail(f"--bits is for RSA keys only and one of {sizes}, not {bits}", code=2)
    check_selector(selector, "--selector")
    key = generate_key(algorithm, bits or MIN_RSA_BITS)
    path = out or Path(f"dkim-{selector}.pem")
    write_private_key(path, key)
    domain = settings.dkim.domain or settings.sender.from_address.rpartition("@")[2]
    typer.echo(f"private key written to {plain(path)} (mode 0600); publish:", err=True)
    typer.echo(txt_record(selector, domain, key))


@app.command()
def show(ctx: typer.Context) -> None:
    """Print the TXT record of each configured key (dkim.private_key_path, and
    dkim.second_private_key_path when set), one line each, as a zone file has it.

    Example: digest dkim show
    """
    settings = app_context(ctx).settings
    keys = configured_keys(settings.dkim, settings.sender)
    if not keys:
        raise fail("DKIM is off: dkim.private_key_path is empty")
    for key in keys:
        typer.echo(key.record())
