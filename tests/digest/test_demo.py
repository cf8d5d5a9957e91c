"""`digest demo`: the newcomer's main job works from nothing, twice in a row."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from digest.config import Settings
from digest.demo import MARKER, prepare_directory, run_demo
from digest.errors import InvalidInput
from tests.helpers.cli import Cli


def test_demo_runs_twice_and_delivers_over_real_smtp(tmp_path: Path, settings: Settings) -> None:
    # Every fourth reader is "not due yet" unless their local hour is already 23: at 09:00 UTC
    # no demo zone is there (at 15:00 UTC Kuala Lumpur is), so the count is fixed.
    for _ in range(2):
        with time_machine.travel(datetime(2026, 12, 3, 9, 0, tzinfo=UTC), tick=True):
            result = run_demo(settings, tmp_path / "demo", people=24)
        assert result.ingest.new == 14
        assert (
            result.report.sent == result.received == result.report.due - result.report.skipped_empty
        )
        assert result.report.sent >= 12
        assert result.not_due == 6
        files = sorted(result.mailbox.glob("*.eml"))
        assert len(files) == result.received
        message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert {p.name for p in result.previews} == {"digest-ar.html", "digest-en.html"}
        html = (tmp_path / "demo" / "digest-ar.html").read_text(encoding="utf-8")
        assert 'dir="rtl"' in html and "النشرة اليومية" in html


def test_demo_command_prints_where_to_look(cli: Cli, tmp_path: Path) -> None:
    result = cli.ok("demo", "--dir", str(tmp_path / "d"), "--people", "8")
    assert "digests in" in result.stdout
    assert "open in a browser" in result.stdout


def test_demo_refuses_the_current_folder_holding_a_users_files(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `digest demo --dir .` used to rmtree the current folder, then fail with a traceback.
    home = tmp_path / "work"
    (home / "notes").mkdir(parents=True)
    (home / "thesis.txt").write_text("two years of work", encoding="utf-8")
    (home / "notes" / "a.txt").write_text("a", encoding="utf-8")
    monkeypatch.chdir(home)
    result = cli("demo", "--dir", ".", "--people", "4")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception is not None
    assert result.stderr.count("\n") == 1
    assert "is not empty and is not a folder the demo made" in result.stderr
    assert (home / "thesis.txt").read_text(encoding="utf-8") == "two years of work"
    assert sorted(p.name for p in home.rglob("*")) == ["a.txt", "notes", "thesis.txt"]


def test_demo_refuses_a_file_and_takes_an_empty_folder(tmp_path: Path, settings: Settings) -> None:
    document = tmp_path / "report.pdf"
    document.write_bytes(b"%PDF")
    with pytest.raises(InvalidInput, match="is a file, not a folder"):
        prepare_directory(document)
    assert document.read_bytes() == b"%PDF"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_directory(empty) == empty / "mail"
    assert (empty / MARKER).is_file()


def test_a_rerun_removes_only_the_files_the_demo_wrote(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "demo"
    first = run_demo(settings, folder, people=8)
    assert (folder / MARKER).is_file() and first.received > 0
    # A user's files left in the demo's folder and its mail folder stay; so does a link's target.
    (folder / "mine.txt").write_text("keep", encoding="utf-8")
    (folder / "mail" / "keep.eml").write_text("keep", encoding="utf-8")
    outside = tmp_path / "outside.html"
    outside.write_text("outside", encoding="utf-8")
    (folder / "digest-fr.html").symlink_to(outside)
    second = run_demo(settings, folder, people=8)
    assert (folder / "mine.txt").read_text(encoding="utf-8") == "keep"
    assert (folder / "mail" / "keep.eml").read_text(encoding="utf-8") == "keep"
    assert outside.read_text(encoding="utf-8") == "outside"
    assert not (folder / "digest-fr.html").is_symlink()
    assert len(list((folder / "mail").glob("0*.eml"))) == second.received
