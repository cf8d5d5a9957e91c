"""A tiny authoritative DNS server on UDP loopback for doctor's DKIM tests: it answers TXT
queries from a dict, NXDOMAIN for names it does not know, and can be told to answer a name
with an error code (SERVFAIL) or to never answer at all (a resolver's timeout)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

_POLL_SECONDS = 0.05  # how often the serving thread looks whether it should stop


def txt_strings(zone_line: str) -> tuple[str, ...]:
    """The quoted strings of a zone-file TXT line (`name TXT "..." "..."`), as published."""
    return tuple(zone_line.split('"')[1::2])


@dataclass
class DnsServer:
    """`records`: a name (no final dot, lower case) -> its TXT records, each a sequence of
    character-strings of at most 255 bytes (resolvers join a record's strings back). A
    name with an empty list exists without TXT records (NOERROR, no answer). `rcodes`: names
    answered with that code instead (e.g. dns.rcode.SERVFAIL). `silent`: answer nothing."""

    records: dict[str, list[Sequence[str]]] = field(default_factory=dict)
    rcodes: dict[str, dns.rcode.Rcode] = field(default_factory=dict)
    silent: bool = False
    queries: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def address(self) -> str:
        """The server as the dkim.nameserver setting names it: `127.0.0.1:PORT`."""
        return f"127.0.0.1:{self.port}"

    def answer(self, wire: bytes) -> bytes | None:
        """The response to the query `wire`, or None for no response."""
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        if self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.rcodes:
            response.set_rcode(self.rcodes[name])
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and self.records[name]:
            texts = [" ".join(_quoted(part) for part in strings) for strings in self.records[name]]
            response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "TXT", *texts))
        return response.to_wire()


def _quoted(string: str) -> str:
    return '"' + string.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def dns_server(
    records: Mapping[str, Sequence[Sequence[str]]] | None = None, *, silent: bool = False
) -> Iterator[DnsServer]:
    """A DnsServer answering on 127.0.0.1 (an ephemeral UDP port) until the block ends; its
    records and rcodes may be changed while it runs."""
    zone = {name.lower(): list(texts) for name, texts in (records or {}).items()}
    server = DnsServer(records=zone, silent=silent)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(_POLL_SECONDS)
    server.port = sock.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, client = sock.recvfrom(65535)
            except TimeoutError:
                continue
            response = server.answer(wire)
            if response is not None:
                sock.sendto(response, client)

    thread = threading.Thread(target=serve, name="dns-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        sock.close()
