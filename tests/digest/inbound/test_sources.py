"""Messages streamed from .eml files, mbox files, Maildirs, directories and stdin."""

from __future__ import annotations

import io
import mailbox
import os
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.inbound.sources import (
    STDIN,
    Envelope,
    Skipped,
    batches,
    header_envelope,
    read_path,
    read_sources,
    read_stdin,
)
from digest.inbound.verdicts import Received, Source

CAP = 10_000


def _mail(n: int, *, extra: str = "", body: str = "") -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: b-x@bounces.example.org\r\n{extra}"
        f"Subject: message {n}\r\nMessage-ID: <m{n}@mx.example.net>\r\n\r\n{body or 'body'}\r\n"
    ).encode()


def _subjects(items: list[Received | Skipped]) -> set[str]:
    found = set()
    for item in items:
        assert isinstance(item, Received), item
        for line in item.raw.splitlines():
            if line.startswith(b"Subject: "):
                found.add(line[9:].decode())
    return found


def _mbox(path: Path, numbers: range) -> Path:
    box = mailbox.mbox(path)
    for n in numbers:
        box.add(_mail(n))
    box.close()
    return path


def _maildir(path: Path, numbers: range) -> Path:
    box = mailbox.Maildir(path)
    for n in numbers:
        key = box.add(_mail(n))
        if n % 2:  # read ones sit in cur/
            message = box[key]
            message.set_subdir("cur")
            box[key] = message
    box.add_folder("Processed").add(_mail(999))  # another folder: not read
    return path


def test_an_eml_file_is_one_message_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(_mail(1, extra="Return-Path: <>\r\nDelivered-To: b-x@bounces.example.org\r\n"))
    [item] = list(read_path(path, max_bytes=CAP))
    assert isinstance(item, Received)
    assert item.raw == path.read_bytes()
    assert item.source is Source.FILE
    # A file's headers are not an envelope anybody here saw: the classifier reads them.
    assert item.envelope_to == ()
    assert item.envelope_from == ""


def test_an_mbox_yields_each_message_lazily(tmp_path: Path) -> None:
    path = _mbox(tmp_path / "bounces.mbox", range(1, 6))
    stream = read_path(path, max_bytes=CAP)
    assert isinstance(stream, types.GeneratorType)  # nothing read until asked
    first = next(stream)
    assert isinstance(first, Received) and b"Subject: message 1" in first.raw
    assert not first.raw.startswith(b"From ")  # the mbox separator is not the message's
    assert _subjects([first, *stream]) == {f"message {n}" for n in range(1, 6)}


def test_a_maildir_reads_new_and_cur_but_not_its_subfolders(tmp_path: Path) -> None:
    path = _maildir(tmp_path / "Maildir", range(1, 5))
    assert _subjects(list(read_path(path, max_bytes=CAP))) == {f"message {n}" for n in range(1, 5)}


def test_a_directory_mixing_eml_mbox_and_a_maildir_reads_them_all(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(_mail(1))
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "b").write_bytes(_mail(2))  # no extension: one message
    _mbox(tmp_path / "saved" / "old.mbox", range(3, 5))
    _maildir(tmp_path / "Maildir", range(5, 7))
    (tmp_path / ".hidden.eml").write_bytes(_mail(99))
    items = list(read_sources([str(tmp_path)], max_bytes=CAP))
    assert _subjects(items) == {f"message {n}" for n in range(1, 7)}


def test_an_oversized_message_is_named_and_skipped_and_the_rest_goes_on(tmp_path: Path) -> None:
    big = _mail(2, body="x" * CAP)
    (tmp_path / "big.eml").write_bytes(big)
    (tmp_path / "small.eml").write_bytes(_mail(1))
    box = _mbox(tmp_path / "box.mbox", range(3, 4))
    with box.open("ab") as handle:
        handle.write(b"\nFrom MAILER-DAEMON Sat Nov 28 06:00:00 2026\n" + big.replace(b"\r", b""))
    items = list(read_sources([str(tmp_path)], max_bytes=CAP))
    skipped = sorted((s.where, s.unreadable) for s in items if isinstance(s, Skipped))
    assert skipped == [(str(tmp_path / "big.eml"), False), (f"{box} message 2", False)]
    assert _subjects([i for i in items if isinstance(i, Received)]) == {"message 1", "message 3"}
    assert all("max_message_bytes" in s.why for s in items if isinstance(s, Skipped))


def test_an_unreadable_source_is_reported_with_its_path_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(_mail(1))
    missing = tmp_path / "missing.eml"
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.eml").write_bytes(_mail(2))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: use a path that is not there
            locked.chmod(0o755)
            locked = tmp_path / "gone" / "new"
        items = list(read_sources([str(missing), str(locked), str(good)], max_bytes=CAP))
    finally:
        if locked.exists():
            locked.chmod(0o755)
    assert [(s.where, s.unreadable) for s in items if isinstance(s, Skipped)] == [
        (str(missing), True),
        (str(locked), True),
    ]
    assert _subjects([i for i in items if isinstance(i, Received)]) == {"message 1"}


def test_a_broken_mbox_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "broken.mbox"
    path.write_bytes(b"From nobody\n")  # an mbox whose only message is empty
    items = list(read_path(path, max_bytes=CAP))
    assert all(isinstance(i, (Received, Skipped)) for i in items)


def test_stdin_takes_the_envelope_from_options_then_environment_then_headers() -> None:
    raw = _mail(
        1,
        extra=(
            "Return-Path: <>\r\nDelivered-To: final@bounces.example.org\r\n"
            "X-Original-To: u-orig@bounces.example.org\r\n"
        ),
    )
    plain = read_stdin(io.BytesIO(raw), max_bytes=CAP, environ={})
    assert isinstance(plain, Received) and plain.source is Source.STDIN
    assert plain.envelope_to == ("u-orig@bounces.example.org", "final@bounces.example.org")
    postfix_local = read_stdin(
        io.BytesIO(raw),
        max_bytes=CAP,
        environ={"SENDER": "", "ORIGINAL_RECIPIENT": "b-env@bounces.example.org"},
    )
    assert isinstance(postfix_local, Received)
    assert postfix_local.envelope_to[0] == "b-env@bounces.example.org"
    given = read_stdin(
        io.BytesIO(raw),
        max_bytes=CAP,
        environ={"RECIPIENT": "b-env@bounces.example.org"},
        envelope=Envelope(sender="MAILER-DAEMON", recipients=("b-argv@bounces.example.org",)),
    )
    assert isinstance(given, Received)
    assert given.envelope_from == "MAILER-DAEMON"
    assert given.envelope_to[:2] == ("b-argv@bounces.example.org", "b-env@bounces.example.org")


def test_stdin_over_the_cap_is_read_to_its_end_and_skipped() -> None:
    stream = io.BytesIO(_mail(1, body="x" * (5 * CAP)))
    item = read_stdin(stream, max_bytes=CAP)
    assert isinstance(item, Skipped) and item.where == STDIN and not item.unreadable
    assert stream.read() == b""  # drained: the MTA's write does not fail


def test_empty_stdin_is_not_a_message() -> None:
    [item] = list(read_sources([STDIN], max_bytes=CAP, stdin=io.BytesIO(b"\r\n")))
    assert isinstance(item, Skipped) and item.unreadable


@pytest.mark.parametrize(
    "head",
    [
        b"Delivered-To: \xff\xfe<b-x@bounces.example.org\r\n",
        b"Return-Path: " + b"<" * 5000 + b"\r\n",
        b"Delivered-To: " + b"a@b, " * 20_000 + b"\r\n",
        b"\x00\x01\x02 not a header at all",
        b"",
    ],
)
def test_hostile_headers_give_a_bounded_envelope_and_never_raise(head: bytes) -> None:
    sender, recipients = header_envelope(head + b"\r\n\r\nbody")
    assert len(sender) <= 320
    assert len(recipients) <= 10 and all(" " not in r for r in recipients)


_HEADER_NAMES = st.sampled_from([b"Return-Path", b"Delivered-To", b"X-Original-To", b"X-Other"])
_HEADERS = st.lists(
    st.tuples(_HEADER_NAMES, st.binary(max_size=400)).map(lambda nv: nv[0] + b": " + nv[1]),
    max_size=20,
).map(b"\r\n".join)


@given(head=_HEADERS, body=st.binary(max_size=200))
def test_any_bytes_on_stdin_are_one_message_or_one_skip_never_an_error(
    head: bytes, body: bytes
) -> None:
    item = read_stdin(
        io.BytesIO(head + b"\r\n\r\n" + body), max_bytes=CAP, environ={"RECIPIENT": "\x00"}
    )
    if isinstance(item, Received):
        assert len(item.envelope_from) <= 320 and len(item.envelope_to) <= 10
        assert all(a and " " not in a and "\x00" not in a for a in item.envelope_to)
    else:
        assert item.where == STDIN


def test_batches_close_at_a_count_or_a_size_and_carry_the_skips() -> None:
    def mail(size: int) -> Received:
        return Received(b"x" * size, Source.FILE)

    skip = Skipped("big.eml", "too large", unreadable=False)
    items: list[Received | Skipped] = [mail(10), skip, mail(10), mail(10), mail(50), mail(10)]
    grouped = list(batches(iter(items), messages=3, max_bytes=60))
    assert [([len(r.raw) for r in b], s) for b, s in grouped] == [
        ([10, 10, 10], [skip]),
        ([50, 10], []),
    ]
    assert list(batches(iter([skip]))) == [([], [skip])]
