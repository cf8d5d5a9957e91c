"""`digest demo`: the newcomer's main job works from nothing, twice in a row."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from digest.config import Settings
from digest.demo import run_demo
from tests.helpers.cli import Cli


def test_demo_runs_twice_and_delivers_over_real_smtp(tmp_path: Path, settings: Settings) -> None:
    for _ in range(2):
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
