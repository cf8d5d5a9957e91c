"""Our interface over flufl.bounce: its detectors in its order, warnings as DELAYED, hard
or soft from the bounce's own words, a detector's crash skipped."""

from __future__ import annotations

from email.message import Message

import pytest

from digest.db.models import InboundKind
from digest.inbound import detectors
from digest.inbound.detectors import detect, detector_names, explanation
from digest.inbound.message import parse
from tests.helpers.paths import ROOT

BOUNCES = ROOT / "tests" / "data" / "inbound" / "bounces"


def _msg(name: str) -> Message:
    return parse((BOUNCES / name).read_bytes(), max_nesting=5).msg


def test_flufl_detectors_in_its_order() -> None:
    names = detector_names()
    assert names[0] == "DSN"
    assert {"Qmail", "Exim", "Exchange", "GroupWise", "Yahoo", "AOL", "Postfix"} <= set(names)


@pytest.mark.parametrize(
    ("name", "kind", "detector"),
    [
        ("qmail_01.txt", InboundKind.HARD_BOUNCE, "Qmail"),
        ("qmail_06.txt", InboundKind.SOFT_BOUNCE, "Qmail"),
        ("exim_01.txt", InboundKind.HARD_BOUNCE, "Exim"),
        ("simple_03.txt", InboundKind.DELAYED, "SimpleWarning"),
        ("yahoo_01.txt", InboundKind.SOFT_BOUNCE, "Yahoo"),
        ("microsoft_01.txt", InboundKind.HARD_BOUNCE, "Exchange"),
    ],
)
def test_kind_and_detector(name: str, kind: InboundKind, detector: str) -> None:
    found = detect(_msg(name))
    assert found is not None
    assert (found.kind, found.detector) == (kind, detector)


def test_codes_and_diagnostic_from_the_text() -> None:
    found = detect(_msg("yahoo_11.txt"))
    assert found is not None
    assert (found.status, found.smtp_code) == ("5.1.1", 550)
    assert "Recipient address rejected" in found.diagnostic


def test_explanation_stops_at_the_returned_copy() -> None:
    text = explanation(_msg("qmail_01.txt"))
    assert "qmail-send" in text
    assert "Below this line" not in text


def test_nothing_found() -> None:
    assert detect(parse(b"Subject: hi\r\n\r\nhello\r\n", max_nesting=5).msg) is None


def test_a_crashing_detector_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    class Crash:
        def process(self, msg: Message) -> None:
            raise RuntimeError("boom")

    real = list(detectors._DETECTORS)
    monkeypatch.setattr(detectors, "_DETECTORS", [Crash, *real])
    found = detect(_msg("qmail_01.txt"))
    assert found is not None and found.detector == "Qmail"


@pytest.mark.parametrize(
    "found",
    [
        (set(), {b"nobody"}),  # permanent, no usable address
        ({b"nobody"}, set()),  # temporary, no usable address
        ({b"<>"}, {b"postmaster"}),
        (None, ["not a set"]),  # a detector off its contract
    ],
)
def test_a_detector_naming_nobody_usable_gives_way_to_the_next(
    monkeypatch: pytest.MonkeyPatch, found: tuple[object, object]
) -> None:
    class Nobody:
        def process(self, msg: Message) -> tuple[object, object]:
            return found

    real = list(detectors._DETECTORS)
    monkeypatch.setattr(detectors, "_DETECTORS", [Nobody, *real])
    hit = detect(_msg("qmail_01.txt"))
    assert hit is not None and hit.detector == "Qmail" and hit.addresses
    assert detect(parse(b"Subject: hi\r\n\r\nhello\r\n", max_nesting=5).msg) is None
