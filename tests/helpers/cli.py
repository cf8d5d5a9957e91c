"""A runner for the `digest` command, in-process, against a test database."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from digest.cli import app
from tests.helpers.paths import ROOT


class Cli:
    """Runs `digest` in-process against the test database."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(
            app,
            [
                "--config",
                str(ROOT / "settings.toml"),
                "--set",
                f"database.url={self.db_url}",
                *args,
            ],
            input=input,
        )

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (result.output, result.exception)
        return result
