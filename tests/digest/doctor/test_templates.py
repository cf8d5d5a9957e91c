"""doctor's templates check: `digest templates check` on the templates in use."""

from __future__ import annotations

from pathlib import Path

from digest.config import Settings
from digest.doctor.templates import templates_check
from tests.helpers.doctor import tweak


def test_the_built_in_templates_pass(settings: Settings) -> None:
    check = templates_check(settings)
    assert check.status == "ok", check


def test_an_override_that_breaks_a_template_fails_naming_file_and_line(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "email").mkdir()
    broken = tmp_path / "email" / "digest.txt.j2"
    broken.write_text("{{ brand.name }}\n{% if %}\n", encoding="utf-8")
    check = templates_check(tweak(settings, render={"templates_dir": str(tmp_path)}))
    assert check.status == "fail"
    assert f"{broken}:2" in check.detail
    assert "digest templates check" in check.fix
