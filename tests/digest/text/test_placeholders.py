"""Safe `{name}` substitution for subjects written in settings."""

from __future__ import annotations

import pytest

from digest.text.placeholders import fill, placeholder_problems

ALLOWED = {"top_title", "count"}


def test_fill_replaces_names_and_literal_braces() -> None:
    values = {"top_title": "{count} <b>", "count": "٣"}
    assert fill("{{{count}}} — {top_title}", values) == "{٣} — {count} <b>"


def test_attribute_index_and_unknown_names_are_problems() -> None:
    assert placeholder_problems("نشرتك: {top_title} ({count})", ALLOWED) == []
    assert "unknown placeholder {nope}" in placeholder_problems("{nope}", ALLOWED)[0]
    for bad in ("{top_title.__class__}", "{top_title[0]}", "{0}", "{", "a}b"):
        assert placeholder_problems(bad, ALLOWED), bad


def test_fill_refuses_a_name_it_has_no_value_for() -> None:
    with pytest.raises(KeyError):
        fill("{count}", {})
