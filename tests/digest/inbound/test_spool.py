"""The inbound spool (digest/inbound/spool.py): whole files only, durable before they count,
anything unreadable set aside and never deleted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.inbound.spool import (
    Corrupt,
    Spool,
    SpoolBusy,
    SpoolUnwritable,
    decode,
    encode,
)
from digest.inbound.verdicts import Received, Source

AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _mail(tag: str, raw: bytes | None = None) -> Received:
    body = raw if raw is not None else f"Subject: {tag}\r\n\r\nhello\r\n".encode()
    return Received(body, Source.SMTP, "mailer@example.net", (f"b-{tag}@bounces.example.org",))


@given(
    st.lists(
        st.tuples(st.binary(max_size=300), st.text(max_size=40), st.lists(st.text(max_size=40))),
        max_size=5,
    )
)
def test_any_batch_comes_back_as_it_was_written(
    messages: list[tuple[bytes, str, list[str]]],
) -> None:
    batch = [Received(raw, Source.SMTP, sender, tuple(to), AT) for raw, sender, to in messages]
    assert decode(encode(batch, AT)) == batch


def test_every_truncation_or_alteration_is_corrupt() -> None:
    data = encode([_mail("one"), _mail("two")], AT)
    for cut in range(len(data)):
        with pytest.raises(Corrupt):
            decode(data[:cut])
    altered = data.replace(b"hello", b"hellO", 1)
    with pytest.raises(Corrupt, match="altered"):
        decode(altered)


def test_write_puts_a_whole_file_in_new_and_nothing_in_tmp(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    try:
        batch = [_mail("one"), _mail("two")]
        path = spool.write(batch)
        assert spool.waiting() == [path] and path.parent == tmp_path / "new"
        assert [(r.raw, r.envelope_to) for r in spool.read(path) or []] == [
            (r.raw, r.envelope_to) for r in batch
        ]
        assert not list((tmp_path / "tmp").iterdir())
    finally:
        spool.close()


def test_open_removes_half_written_files_and_a_second_server_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "crashed").write_bytes(encode([_mail("half")], AT)[:30])
    spool = Spool(tmp_path)
    spool.open()
    try:
        assert not list((tmp_path / "tmp").iterdir())  # never acknowledged: its sender retries
        with pytest.raises(SpoolBusy):
            Spool(tmp_path).open()
    finally:
        spool.close()
    again = Spool(tmp_path)
    again.open()  # free once the first one is closed
    again.close()


def test_an_unreadable_file_in_new_is_set_aside_not_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    try:
        broken = tmp_path / "new" / "broken"
        broken.write_bytes(b"not a spool file")
        assert spool.read(broken) is None
        assert spool.waiting() == []
        assert (tmp_path / "bad" / "broken").read_bytes() == b"not a spool file"
        assert spool.read(tmp_path / "new" / "gone") is None  # another drain took it
    finally:
        spool.close()


def test_a_full_disk_or_a_broken_folder_is_unwritable_and_leaves_nothing(tmp_path: Path) -> None:
    full = Spool(tmp_path, min_free_bytes=1 << 62)
    full.open()
    try:
        with pytest.raises(SpoolUnwritable, match="free"):
            full.write([_mail("one")])
    finally:
        full.close()
    spool = Spool(tmp_path)
    spool.open()
    try:
        (tmp_path / "new").rmdir()
        (tmp_path / "new").write_bytes(b"")
        with pytest.raises(SpoolUnwritable):
            spool.write([_mail("one")])
        assert not list((tmp_path / "tmp").iterdir())
    finally:
        spool.close()
