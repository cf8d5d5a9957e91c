"""The .eml directory sender (`digest send --to-dir`): each message a file, written whole."""

from __future__ import annotations

import os
import re
from pathlib import Path

from digest.errors import InvalidInput
from digest.send.outcome import Envelope, Outcome, SenderLifecycle

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<?([^>\r\n]+)>?", re.IGNORECASE | re.MULTILINE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class FileSender(SenderLifecycle):
    """Writes every message as `<message-id>.eml` in `directory` (`digest send --to-dir`).

    The name comes from the Message-ID (safe characters only) or, without one, a counter;
    each file is written whole or not at all. `written` lists the files of this session.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.written: list[Path] = []
        self._counter = 0

    async def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"cannot create the output directory {self.directory}: {exc.strerror}"
            ) from None

    async def close(self) -> None:
        return None

    async def send(self, envelope: Envelope) -> Outcome:
        path = self.directory / self._name(envelope.data)
        partial = path.with_name(path.name + ".part")
        try:
            partial.write_bytes(envelope.data)
            os.replace(partial, path)
        except OSError as exc:
            return Outcome("temporary", None, f"cannot write {path}: {exc.strerror}", "file")
        self.written.append(path)
        return Outcome("sent", None, f"written to {path}", "file")

    def _name(self, data: bytes) -> str:
        end = data.find(b"\r\n\r\n")
        head = data[: end if end >= 0 else data.find(b"\n\n")]
        match = _MESSAGE_ID.search(head)
        if match:
            safe = _UNSAFE_NAME.sub("_", match.group(1).decode("ascii", "replace")).strip("._")
            if safe:
                return safe[:200] + ".eml"
        while True:
            self._counter += 1
            name = f"message-{self._counter:06d}.eml"
            if not (self.directory / name).exists():
                return name
