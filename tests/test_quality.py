"""The code stays lint-clean (ruff), type-clean (mypy --strict) and in modules a person can
read whole: part of the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ("digest", "subscribers")
MAX_MODULE_LINES = 450
# Beside its subpackages digest/ keeps a few loose modules (errors, clock, config, ...).
MAX_LOOSE_MODULES = 8


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_over_450_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them):\n" + "\n".join(long)


def test_digest_keeps_few_loose_modules() -> None:
    loose = sorted(path.name for path in (ROOT / "digest").glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, (
        f"{len(loose)} loose modules in digest/ (at most {MAX_LOOSE_MODULES}; "
        f"move them into a subpackage): {loose}"
    )
