"""`digest templates export` and `digest templates check`: files written, refused
overwrites, one `file:line: message` per problem and the exit codes (0 clean, 1 warnings,
2 fatal); a templates_dir that is not a folder stops every command with exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from digest.bundled import templates_dir
from digest.cli import app
from digest.render.exports import builtin_templates
from tests.helpers.paths import ROOT


def _digest(*args: str) -> Result:
    # No database: neither command opens one.
    return CliRunner().invoke(app, ["--config", str(ROOT / "settings.toml"), *args])


def test_export_writes_every_builtin_template(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    result = _digest("templates", "export", str(target))
    assert result.exit_code == 0, result.output
    names = builtin_templates()
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written == names
    assert {n.split("/")[0] for n in names} == {"email", "web"}
    assert "email/digest.mjml.j2" in names and "web/base.html.j2" in names
    assert "email/partials/footer.txt.j2" in names
    for name in names:
        assert (target / name).read_bytes() == (templates_dir() / name).read_bytes()
    assert f"{len(names)} templates written" in result.output


def test_export_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    mine = tmp_path / "email" / "digest.mjml.j2"
    mine.parent.mkdir(parents=True)
    mine.write_text("my own digest", encoding="utf-8")
    refused = _digest("templates", "export", str(tmp_path))
    assert refused.exit_code == 1
    assert "already exists: pass --force" in refused.stderr
    assert mine.read_text(encoding="utf-8") == "my own digest"
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == [mine]  # nothing written
    forced = _digest("templates", "export", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert mine.read_bytes() == (templates_dir() / "email/digest.mjml.j2").read_bytes()


def test_check_on_the_builtins_is_clean() -> None:
    result = _digest("templates", "check")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "templates ok: every email compiles in ar and en, within the size budget"
    )


def test_check_a_folder_with_a_syntax_error_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "welcome.txt.j2").write_text("one\n{% if %}\n", encoding="utf-8")
    result = _digest("templates", "check", str(tmp_path))
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path}/email/welcome.txt.j2:2: ")
    assert lines[-1] == "1 problem, 1 fatal"


def test_check_uses_the_configured_folder_and_warnings_exit_1(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    twinless = tmp_path / "email" / "promo.mjml.j2"
    twinless.write_text((templates_dir() / "email/welcome.mjml.j2").read_text(), encoding="utf-8")
    result = _digest("--set", f"render.templates_dir={tmp_path}", "templates", "check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{twinless}:1: has no plain-text twin email/promo.txt.j2",
        "1 problem, 0 fatal",
    ]


def test_check_a_folder_that_is_not_there_exits_2(tmp_path: Path) -> None:
    result = _digest("templates", "check", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_a_templates_dir_that_is_not_a_folder_stops_every_command(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for command in (["templates", "check"], ["preview", "--list", "daily"]):
        result = _digest("--set", f"render.templates_dir={missing}", *command)
        assert result.exit_code == 2, command
        assert "render.templates_dir" in result.stderr and "does not exist" in result.stderr
