"""Colours: #rgb/#rrggbb parsing, WCAG relative luminance and contrast, against known values."""

from __future__ import annotations

import pytest

from digest.text.colours import (
    colour_problem,
    contrast_ratio,
    format_ratio,
    parse_colour,
    relative_luminance,
)


def test_short_and_long_forms_parse_to_the_same_channels() -> None:
    assert parse_colour("#0b4f6c") == (11, 79, 108)
    assert parse_colour("#FFF") == parse_colour("#ffffff") == (255, 255, 255)
    assert parse_colour("#a1B") == (0xAA, 0x11, 0xBB)


@pytest.mark.parametrize(
    "value", ["", "blue", "0b4f6c", "#12", "#1234", "#12345g", "#0b4f6c ", "#0b4f6cff", "#٠٠٠"]
)
def test_anything_but_hex_is_refused_with_the_form_to_write(value: str) -> None:
    problem = colour_problem(value)
    assert problem is not None and "#rgb or #rrggbb" in problem
    with pytest.raises(ValueError, match="is not a colour"):
        parse_colour(value)


def test_luminance_of_black_white_and_the_primaries() -> None:
    assert relative_luminance("#000") == 0
    assert relative_luminance("#fff") == pytest.approx(1)
    assert relative_luminance("#f00") == pytest.approx(0.2126)
    assert relative_luminance("#0f0") == pytest.approx(0.7152)
    assert relative_luminance("#00f") == pytest.approx(0.0722)
    assert relative_luminance("#808080") == pytest.approx(0.2158605, abs=1e-6)


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [
        ("#000000", "#ffffff", 21.0),
        ("#777777", "#ffffff", 4.478),  # the classic near miss of AA
        ("#767676", "#ffffff", 4.542),  # the lightest grey that passes AA on white
        ("#0b4f6c", "#ffffff", 8.939),  # the default header
        ("#f0b429", "#ffffff", 1.864),  # the default accent: decoration only
        ("#ffffff", "#ffffff", 1.0),
    ],
)
def test_known_wcag_ratios_either_way_round(first: str, second: str, ratio: float) -> None:
    assert contrast_ratio(first, second) == pytest.approx(ratio, abs=0.001)
    assert contrast_ratio(second, first) == contrast_ratio(first, second)


def test_a_ratio_is_shown_rounded_down_so_a_miss_never_reads_as_a_pass() -> None:
    assert format_ratio(contrast_ratio("#777", "#fff")) == "4.47:1"  # as WebAIM shows it
    assert format_ratio(4.4999) == "4.49:1"
    assert format_ratio(21.0) == "21.00:1"
