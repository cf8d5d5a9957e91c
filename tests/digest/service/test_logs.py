"""The long-running commands' log: stdout, one line a record, plain or JSON lines; a message
with line breaks, or a traceback, stays on its record's line."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from digest.service.logs import PlainFormatter, install, stdout_is_journal
from digest.settings.logs import LogSettings
from tests.helpers.cli import Cli

MULTI = "first line\nsecond line\r\nthird\u2028fourth\x85fifth\x1b[31m"


def _log_some(name: str = "digest.test") -> None:
    logger = logging.getLogger(name)
    logger.info("plain %s", "words")
    logger.warning(MULTI)
    logger.debug("not at info")
    try:
        raise ValueError("boom\nsecond line of the error")
    except ValueError:
        logger.exception("failed: مها")


def _logged(settings: LogSettings, capsys: pytest.CaptureFixture[str]) -> list[str]:
    restore = install(settings, journal=False)
    try:
        _log_some()
    finally:
        restore()
    text = capsys.readouterr().out  # the handler looks up sys.stdout at each record
    assert text.endswith("\n")
    return text.splitlines()  # splits on \u2028, \x85 and the like too: none may be left


def test_plain_lines_one_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _logged(LogSettings(format="plain"), capsys)
    assert len(lines) == 3
    assert lines[0] == "INFO digest.test: plain words"
    assert lines[1] == (
        "WARNING digest.test: first line\\nsecond line\\r\\nthird\\u2028fourth\\x85fifth\\x1b[31m"
    )
    assert lines[2].startswith("ERROR digest.test: failed: مها | Traceback (most recent call")
    assert lines[2].endswith("ValueError: boom\\nsecond line of the error")


def test_json_lines_parse_and_keep_the_message_whole(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _logged(LogSettings(format="json"), capsys)
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [r["level"] for r in records] == ["INFO", "WARNING", "ERROR"]
    assert {r["logger"] for r in records} == {"digest.test"}
    assert records[0]["message"] == "plain words"
    assert records[1]["message"] == MULTI
    assert records[2]["message"] == "failed: مها"  # Arabic as it is, not \\u escapes
    assert "مها" in lines[2]
    exception = records[2]["exception"]
    assert exception.startswith("Traceback") and "ValueError: boom\nsecond line" in exception
    assert "exception" not in records[0]
    assert records[0]["time"].endswith("Z") and records[0]["time"][10] == "T"


def test_level_and_restore(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("apscheduler").level)
    restore = install(LogSettings(level="warning"), journal=False)
    logging.getLogger("digest.test").info("quiet")
    logging.getLogger("digest.test").error("loud")
    restore()
    assert capsys.readouterr().out == "ERROR digest.test: loud\n"
    assert (root.level, list(root.handlers), logging.getLogger("apscheduler").level) == before


def test_level_names_read_in_any_case() -> None:
    assert LogSettings.model_validate({"level": "WARNING", "format": "JSON"}) == LogSettings(
        level="warning", format="json"
    )


def test_journal_lines_carry_the_syslog_priority() -> None:
    formatter = PlainFormatter(journal=True)
    record = logging.LogRecord("digest.x", logging.WARNING, __file__, 1, "late", None, None)
    assert formatter.format(record) == "<4>WARNING digest.x: late"
    record.levelno, record.levelname = logging.CRITICAL, "CRITICAL"
    assert formatter.format(record).startswith("<2>CRITICAL")


def test_journal_is_recognised_by_journal_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "out").open("w") as out, (tmp_path / "other").open("w") as other:
        monkeypatch.setattr(sys, "stdout", out)
        stat = os.fstat(out.fileno())
        assert stdout_is_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"})
        elsewhere = os.fstat(other.fileno())
        assert not stdout_is_journal({"JOURNAL_STREAM": f"{elsewhere.st_dev}:{elsewhere.st_ino}"})
        assert not stdout_is_journal({})
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # no file behind it
    assert not stdout_is_journal({"JOURNAL_STREAM": "1:2"})


def test_scheduler_once_logs_json_lines(cli: Cli) -> None:
    result = cli.ok("--set", "log.format=json", "scheduler", "--once")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    jobs = [r["message"] for r in records if r["logger"] == "digest.schedule.scheduler"]
    assert any(message.startswith("job=ingest status=ok") for message in jobs), records
    assert logging.getLogger().handlers == [
        h for h in logging.getLogger().handlers if type(h).__name__ != "StdoutHandler"
    ]  # put back as it was once the command ended
