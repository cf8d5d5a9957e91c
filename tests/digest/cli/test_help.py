"""Every command and group explains itself with --help, ending with an example."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from digest.cli import app


def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


ALL = sorted(_commands(get_command(app)))


def test_the_contracted_commands_exist() -> None:
    names = {" ".join(p) for p in ALL}
    for expected in (
        "db upgrade",
        "topics add",
        "topics list",
        "lists create",
        "lists list",
        "lists show",
        "lists delete",
        "subscribers add",
        "subscribers import",
        "subscribers export",
        "subscribers show",
        "subscribers unsubscribe",
        "subscribers remove",
    ):
        assert expected in names


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "digest")
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example: digest" in result.output


def test_typer_app_is_importable_as_console_entry() -> None:
    from digest.cli import main

    assert callable(main)
    assert isinstance(app, typer.Typer)
