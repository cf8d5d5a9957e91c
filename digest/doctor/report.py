"""A check's finding (`Check`), the overall verdict, and the two ways doctor shows them: one
line per check for an operator, a JSON document for monitoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]
_RANK: dict[Status, int] = {"ok": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Check:
    """One finding: `name` of what was checked, `status`, what was found (`detail`) and,
    for a warning or failure, what to do about it (`fix`)."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    @classmethod
    def ok(cls, name: str, detail: str) -> Check:
        return cls(name, "ok", detail)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, "warn", detail, fix)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, "fail", detail, fix)


def overall(checks: Sequence[Check]) -> Status:
    """The worst status among `checks` ("ok" when there are none)."""
    worst: Status = "ok"
    for check in checks:
        if _RANK[check.status] > _RANK[worst]:
            worst = check.status
    return worst


def as_line(check: Check) -> str:
    """`status  name: detail`, and `  fix: ...` after a warning or failure."""
    line = f"{check.status:<4}  {check.name}: {check.detail}"
    if check.status != "ok" and check.fix:
        line += f"  fix: {check.fix}"
    return line


def as_document(checks: Sequence[Check]) -> dict[str, Any]:
    """{"status": worst, "checks": [{name, status, detail, fix}, ...]} for `--json`."""
    return {"status": overall(checks), "checks": [asdict(check) for check in checks]}
