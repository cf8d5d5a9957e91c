"""Compiled output split once into literal chunks and named slots; personalising is a join."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping


class SlotTemplate:
    """Literal text with named holes; `fill` costs one list copy and one join."""

    __slots__ = ("_groups", "_parts", "_slots")

    def __init__(self, parts: list[str], slots: tuple[tuple[int, str], ...]) -> None:
        self._parts = parts
        self._slots = slots
        groups: dict[str, list[int]] = {}
        for index, name in slots:
            groups.setdefault(name, []).append(index)
        self._groups = tuple((name, tuple(indexes)) for name, indexes in groups.items())

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self._groups)

    def fill(self, values: Mapping[str, str]) -> str:
        parts = self._parts.copy()
        for name, indexes in self._groups:
            value = values[name]
            for index in indexes:
                parts[index] = value
        return "".join(parts)

    def byte_size(self, reserve: Mapping[str, int]) -> int:
        """UTF-8 size of the literal text plus `reserve[name]` bytes for every slot."""
        literal = sum(len(part.encode()) for part in self._parts)
        return literal + sum(reserve[name] for _, name in self._slots)


class SlotMarkers:
    """Unguessable markers rendered into a template where a per-recipient value goes.

    The nonce is new for every compile, so text from a feed cannot forge a marker.
    """

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(8)
        self._pattern = re.compile(rf"@@{self.nonce}\.([a-z_]+)@@")

    def __call__(self, name: str) -> str:
        return f"@@{self.nonce}.{name}@@"

    def split(self, text: str) -> SlotTemplate:
        parts: list[str] = []
        slots: list[tuple[int, str]] = []
        last = 0
        for match in self._pattern.finditer(text):
            parts.append(text[last : match.start()])
            slots.append((len(parts), match.group(1)))
            parts.append("")
            last = match.end()
        parts.append(text[last:])
        return SlotTemplate(parts, tuple(slots))
