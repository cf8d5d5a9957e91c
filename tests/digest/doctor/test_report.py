"""The doctor report: the worst status wins, one line per check, the JSON document."""

from __future__ import annotations

from digest.doctor.report import Check, as_document, as_line, overall


def test_the_worst_status_wins() -> None:
    ok, warn, fail = (
        Check.ok("a", "fine"),
        Check.warn("b", "hm", "do x"),
        Check.fail("c", "no", "y"),
    )
    assert overall([]) == "ok"
    assert overall([ok, warn]) == "warn"
    assert overall([fail, ok, warn]) == "fail"


def test_a_line_shows_the_fix_only_when_something_is_wrong() -> None:
    assert as_line(Check.ok("database", "at 0013")) == "ok    database: at 0013"
    assert (
        as_line(Check.fail("smtp", "refused", "start it")) == "fail  smtp: refused  fix: start it"
    )


def test_the_document_lists_every_check_with_the_overall_status() -> None:
    document = as_document([Check.ok("a", "fine"), Check.warn("b", "hm", "do x")])
    assert document == {
        "status": "warn",
        "checks": [
            {"name": "a", "status": "ok", "detail": "fine", "fix": ""},
            {"name": "b", "status": "warn", "detail": "hm", "fix": "do x"},
        ],
    }
