"""doctor's time zone check: the zones of the settings, the subscribers and a few more."""

from __future__ import annotations

import zoneinfo

import pytest

from digest.config import Settings
from digest.doctor.zones import zones_check


def test_the_zones_in_use_load(settings: Settings) -> None:
    check = zones_check(settings, {"Africa/Cairo", "America/New_York"})
    assert check.status == "ok"
    assert "data from" in check.detail


def test_a_zone_the_data_does_not_know_fails(settings: Settings) -> None:
    check = zones_check(settings, {"Mars/Olympus_Mons"})
    assert check.status == "fail"
    assert "Mars/Olympus_Mons" in check.detail
    assert "tzdata" in check.fix


def test_no_time_zone_data_at_all_fails(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outside world we cannot remove for one test: no system tz folders, no tzdata.
    monkeypatch.setattr(zoneinfo, "TZPATH", ())
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    check = zones_check(settings)
    assert check.status == "fail"
    assert "no time zone data" in check.detail
