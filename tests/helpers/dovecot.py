"""A throwaway Dovecot IMAP server on loopback, for the IMAP polling tests.

Debian's /usr/sbin/dovecot (package dovecot-imapd), run in the foreground (`-F`) with a
config of its own: plain IMAP on 127.0.0.1 and a free port, no TLS, one user with a static
password whose mail is the Maildir `maildir`, runtime and state files and the log under a
temporary directory. Dovecot never accesses mail as root, so under root the mail belongs to
`nobody`; its directory is made with mkdtemp under /tmp (pytest's tmp_path sits in root's
private folder, which `nobody` cannot enter) and removed after.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.ci import missing

DOVECOT = Path("/usr/sbin/dovecot")
USER = "bounces"
PASSWORD = "imap-test-password"
_START_SECONDS = 20.0


class DovecotMissing(RuntimeError):
    """Dovecot (or the users it runs as) is not installed here."""


@dataclass(frozen=True)
class Server:
    port: int
    base: Path
    maildir: Path  # the user's INBOX; other folders are Maildir++ `.Name` inside it

    @property
    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def folder(self, name: str) -> Path:
        """The Maildir of folder `name` (INBOX is the root)."""
        return self.maildir if name == "INBOX" else self.maildir / f".{name}"

    def messages(self, name: str) -> list[bytes]:
        """The messages of folder `name`, read from the disk (new/ and cur/)."""
        folder = self.folder(name)
        return [
            path.read_bytes()
            for sub in ("new", "cur")
            if (folder / sub).is_dir()
            for path in sorted((folder / sub).iterdir())
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _users() -> tuple[str, str, str, str]:
    """(internal user, login user, mail user, mail group) for the running user."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = _group_name(os.getegid())
        return me, me, me, group
    for name in ("dovecot", "dovenull", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            raise DovecotMissing(
                f"user {name!r} does not exist (apt-get install dovecot-imapd)"
            ) from None
    return "dovecot", "dovenull", "nobody", _group_name(pwd.getpwnam("nobody").pw_gid)


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _config(base: Path, port: int, users: tuple[str, str, str, str]) -> str:
    internal, login, mail_user, mail_group = users
    return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_login_user = {login}
mail_location = maildir:{base}/Maildir
first_valid_uid = 1
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={base}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@contextmanager
def server_or_missing() -> Iterator[Server]:
    """`server()`, or the test skipped (failed in CI) when Dovecot cannot run here."""
    try:
        with server() as running:
            yield running
    except DovecotMissing as exc:
        missing(str(exc))


@contextmanager
def server() -> Iterator[Server]:
    """Start Dovecot, yield it once it accepts connections, stop it; DovecotMissing when it
    cannot run here."""
    if not DOVECOT.exists():
        raise DovecotMissing(f"{DOVECOT} is not installed (apt-get install dovecot-imapd)")
    users = _users()
    base = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
    os.chmod(base, 0o755)
    maildir = base / "Maildir"
    for folder in (maildir / "new", maildir / "cur", maildir / "tmp", base / "home"):
        folder.mkdir(parents=True)
    for path in (maildir, *maildir.iterdir(), base / "home"):
        shutil.chown(path, users[2], users[3])
    port = free_port()
    (base / "dovecot.conf").write_text(_config(base, port, users))
    with (base / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(base / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_for(port, process, base)
        yield Server(port=port, base=base, maildir=maildir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen[bytes], base: Path) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = "".join(
                (base / name).read_text(errors="replace")[-2000:]
                for name in ("stderr.txt", "dovecot.log")
                if (base / name).exists()
            )
            raise RuntimeError(f"dovecot exited ({process.returncode}): {said}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
                if connection.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on 127.0.0.1:{port} in {_START_SECONDS}s")


def deliver(server: Server, raw: bytes, name: str) -> Path:
    """Put `raw` in the INBOX the way an MDA does (tmp/, then renamed into new/), owned by
    the mail user so that Dovecot can move it."""
    tmp = server.maildir / "tmp" / name
    tmp.write_bytes(raw)
    stat = server.maildir.stat()
    os.chown(tmp, stat.st_uid, stat.st_gid)
    final = server.maildir / "new" / name
    tmp.rename(final)
    return final
