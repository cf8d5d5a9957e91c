"""A throwaway PostgreSQL server on loopback, for tests and benchmarks.

Debian's binaries (/usr/lib/postgresql/N/bin), a data directory under /tmp owned by the
`postgres` user (postgres refuses to run as root: it is started through `runuser`), trust
authentication, a free port on 127.0.0.1. Stopped with `-m immediate` and removed after.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class PostgresMissing(RuntimeError):
    """PostgreSQL (or the means to run it) is not installed here."""


def binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@dataclass(frozen=True)
class Server:
    port: int
    base: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A plain psycopg connection string (no SQLAlchemy)."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(*, fsync: bool = False) -> Iterator[Server]:
    """Start a server, yield it, stop it; raises PostgresMissing when it cannot run here."""
    bin_dir = binaries()
    if bin_dir is None:
        raise PostgresMissing("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401  (the driver must be there)
    except ImportError:
        raise PostgresMissing("psycopg is not installed (pip install -e '.[postgres]')") from None
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        if shutil.which("runuser") is None:
            raise PostgresMissing("running as root without runuser")
        as_user = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: the postgres user cannot enter root's private folders.
    base = Path(tempfile.mkdtemp(prefix="digest-pg-"))
    if as_user:
        shutil.chown(base, "postgres")
    port = free_port()
    data = base / "data"
    ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=300"
    if not fsync:  # throwaway data: durability costs time and proves nothing here
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*ctl, "-o", options, "-w", "-l", str(base / "log"), "start"],
            check=True,
            capture_output=True,
        )
        yield Server(port, base)
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _ctl(server: Server) -> list[str]:
    """`pg_ctl -D <data>` for `server`, run as the postgres user when we are root."""
    bin_dir = binaries()
    if bin_dir is None:
        raise PostgresMissing("PostgreSQL is not installed (apt-get install postgresql)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*as_user, str(bin_dir / "pg_ctl"), "-D", str(server.base / "data")]


def restart(server: Server, *, down_seconds: float = 0.0) -> None:
    """Stop `server` (`-m fast`: sessions are cut, as in a real restart), wait, start it again.

    The same port, socket directory and options: `pg_ctl restart` reuses the command line
    kept in postmaster.opts (it starts the stopped server "anyway").
    """
    ctl = _ctl(server)
    subprocess.run([*ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)
    if down_seconds > 0:
        time.sleep(down_seconds)
    subprocess.run(
        [*ctl, "-w", "-l", str(server.base / "log"), "restart"], check=True, capture_output=True
    )
