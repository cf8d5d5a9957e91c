"""`[log]`: how the long-running commands (serve, scheduler, worker, inbound) write their log
to stdout: one line per record, plain for journald or JSON lines for log collectors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from digest.settings.fields import Section as _Section

__all__ = ["LogSettings"]


class LogSettings(_Section):
    """`[log]`: the line format and the lowest level written."""

    format: Literal["plain", "json"] = "plain"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("format", "level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        # `DIGEST_LOG__LEVEL=INFO` reads as well as the file's `level = "info"`.
        return value.strip().lower() if isinstance(value, str) else value
