"""A throwaway Postfix (Debian's) on loopback: a relay that hands each test domain to a local
SMTP server, and sends its real bounces (DSNs) the same way.

    with Postfix({"example.org": sink.port, "bounces.example.org": inbound_port}) as relay:
        ... send to 127.0.0.1:relay.port ...
        relay.wait_for("status=bounced")

Its own config, queue and data directories live in a fresh temporary directory; it listens on
a free loopback port, delivers nothing locally, looks nothing up in the DNS, and retries
after seconds rather than minutes. Its log is `maillog` in that directory (no syslog needed;
`log()` reads it). Tests run as root (as in CI): the daemons drop to the `postfix` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.helpers.ci import missing

POSTFIX = "/usr/sbin/postfix"
DAEMONS = "/usr/lib/postfix/sbin"
HOSTNAME = "relay.postfix.test"  # not the receiving servers' names: no "loops back to myself"

# Each service unchrooted (the queue is in a temporary directory, not /var/spool/postfix).
_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

_MAIN = """\
compatibility_level = 3.6
config_directory = {base}/etc
queue_directory = {base}/queue
data_directory = {base}/data
meta_directory = /etc/postfix
daemon_directory = {daemons}
command_directory = /usr/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = postfix.test
myorigin = $myhostname
mydestination =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
relayhost =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
transport_maps = inline:{{ {routes} }}
default_transport = error:5.3.0 no route in this test relay
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
delay_warning_time = 0h
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
biff = no
smtputf8_enable = yes
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Postfix:
    """A Postfix instance routing each domain of `routes` to `127.0.0.1:port`.

    Anything else is refused (no DNS, no local delivery). Enter to start it (a missing
    Postfix, or not being root, skips locally and fails in CI), leave to stop it and remove
    its directory.
    """

    def __init__(self, routes: Mapping[str, int]) -> None:
        self.routes = dict(routes)
        self.port = 0
        self.base = Path()
        self._started = False

    def __enter__(self) -> Postfix:
        if not (os.path.exists(POSTFIX) and os.path.isdir(DAEMONS)):
            missing("postfix is not installed (apt-get install postfix)")
        if os.geteuid() != 0:
            missing("a throwaway Postfix needs root (its daemons drop to the postfix user)")
        self.base = Path(tempfile.mkdtemp(prefix="digest-postfix-"))
        self.base.chmod(0o755)  # the daemons, as `postfix`, open files below it
        try:
            self._configure()
            self._postfix("start")
            self._started = True
            self._wait_listening(30.0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started:
            self._started = False
            self._postfix("stop", check=False)
            self._wait_stopped(30.0)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- what tests use ----------------------------------------------------------------------

    def log(self) -> str:
        path = self.base / "maillog"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The log once it holds `text` (polled; AssertionError with the log after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.log()
            if text in found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"postfix never logged {text!r}; its log:\n{self.log()[-6000:]}")

    # -- machinery ---------------------------------------------------------------------------

    def _configure(self) -> None:
        etc = self.base / "etc"
        etc.mkdir()
        for name in ("queue", "data"):
            (self.base / name).mkdir()
        shutil.chown(self.base / "data", "postfix", "postfix")
        self.port = free_port()
        routes = ", ".join(f"{d}=smtp:[127.0.0.1]:{p}" for d, p in self.routes.items())
        (etc / "main.cf").write_text(
            _MAIN.format(base=self.base, daemons=DAEMONS, hostname=HOSTNAME, routes=routes)
        )
        (etc / "master.cf").write_text(_MASTER.format(port=self.port))
        # Creates the queue's subdirectories with the owners and modes Postfix requires.
        self._postfix("set-permissions")
        self._postfix("check")

    def _postfix(self, command: str, *, check: bool = True) -> None:
        self._run([POSTFIX, "-c", str(self.base / "etc"), command], check=check)

    def _run(self, argv: list[str], *, check: bool) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr or done.stdout}"
            )

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix does not listen on {self.port}; its log:\n{self.log()}")

    def _wait_stopped(self, timeout: float) -> None:
        """Until the master's pid file is gone (its children end with it)."""
        pid = self.base / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + timeout
        while pid.exists() and time.monotonic() < deadline:
            try:
                os.kill(int(pid.read_text().strip() or 0), 0)
            except (ValueError, ProcessLookupError):
                return
            time.sleep(0.1)
