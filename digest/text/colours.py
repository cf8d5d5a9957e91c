"""CSS hex colours and their WCAG 2 contrast: parsing `#rgb`/`#rrggbb`, relative luminance,
the contrast ratio of two colours (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio)."""

from __future__ import annotations

import math
import re

__all__ = [
    "AA_LARGE_TEXT",
    "AA_TEXT",
    "AA_UI",
    "colour_problem",
    "contrast_ratio",
    "format_ratio",
    "parse_colour",
    "relative_luminance",
]

AA_TEXT = 4.5  # WCAG 2 AA, 1.4.3: body text
AA_LARGE_TEXT = 3.0  # 1.4.3: text of at least 24 px, or 18.66 px bold
AA_UI = 3.0  # 1.4.11: borders and focus rings a reader needs to see a control

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def colour_problem(value: str) -> str | None:
    """Why `value` is not a `#rgb` or `#rrggbb` colour, or None."""
    if _HEX.fullmatch(value):
        return None
    shown = value[:40]
    return f"{shown!r} is not a colour: write #rgb or #rrggbb, e.g. #0b4f6c"


def parse_colour(value: str) -> tuple[int, int, int]:
    """`#0b4f6c` -> (11, 79, 108); `#fff` -> (255, 255, 255). ValueError if not a colour."""
    problem = colour_problem(value)
    if problem is not None:
        raise ValueError(problem)
    digits = value[1:]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    red, green, blue = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return red, green, blue


def _linear(channel: int) -> float:
    value = channel / 255
    # 0.04045 is the sRGB standard's threshold; WCAG's text says 0.03928, which gives the
    # same result for every 8-bit value.
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance: 0 for black, 1 for white."""
    red, green, blue = (_linear(c) for c in parse_colour(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """(lighter + 0.05) / (darker + 0.05), from 1 (same) to 21 (black on white)."""
    one, two = relative_luminance(first), relative_luminance(second)
    lighter, darker = max(one, two), min(one, two)
    return (lighter + 0.05) / (darker + 0.05)


def format_ratio(ratio: float) -> str:
    """`4.48:1`: two decimals, rounded down so a failing ratio never reads as passing."""
    return f"{math.floor(ratio * 100) / 100:.2f}:1"
