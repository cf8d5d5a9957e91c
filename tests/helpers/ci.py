"""Whether the tests run in CI, and what a missing outside tool means there."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """A tool cannot run here: skip on a developer machine, fail in CI (CI=true)."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)
