"""Slots: compiled text is split once; filling is a join of literal chunks and values."""

from __future__ import annotations

from digest.render.slots import SlotMarkers


def test_split_and_fill() -> None:
    marker = SlotMarkers()
    template = marker.split(f'<a href="/u/{marker("unsubscribe")}">{marker("greeting")}</a>')
    assert template.names == {"unsubscribe", "greeting"}
    assert template.fill({"unsubscribe": "t1", "greeting": "مرحبًا"}) == '<a href="/u/t1">مرحبًا</a>'
    assert template.fill({"unsubscribe": "t2", "greeting": ""}) == '<a href="/u/t2"></a>'
    assert (
        template.byte_size({"unsubscribe": 10, "greeting": 100}) == len('<a href="/u/"></a>') + 110
    )


def test_markers_are_unguessable_per_compile() -> None:
    first, second = SlotMarkers(), SlotMarkers()
    assert first("greeting") != second("greeting")
    # A feed that somehow contains another compile's marker is left as literal text.
    template = first.split(second("greeting"))
    assert template.names == frozenset()
    assert template.fill({}) == second("greeting")
