"""The wheel holds everything the engine reads at run time (pyproject.toml, digest/bundled):
every template, compiled catalog and migration of the source tree, the sample feed, the
`digest` script; and a wheel built from the sdist holds the same files.

.ci/run also installs the wheel into a fresh venv and runs `digest demo` from a temporary
folder; these tests only build (hatchling, no build isolation: no network)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow


def _source_files(folder: str) -> set[str]:
    """The files of a top-level folder as the wheel must hold them (under digest/bundled)."""
    base = ROOT / folder
    return {
        f"digest/bundled/{folder}/{path.relative_to(base).as_posix()}"
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _build(target: str, source: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", target, "-d", str(out)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (built,) = out.iterdir()
    return built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build("wheel", ROOT, tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_every_template_catalog_and_migration(wheel: Path) -> None:
    names = _names(wheel)
    templates, migrations = _source_files("templates"), _source_files("migrations")
    assert templates - names == set()
    assert migrations - names == set()
    catalogs = {n for n in templates if n.endswith(".mo")}
    assert {"ar", "en"} <= {n.split("/")[4] for n in catalogs}  # .../locale/<ar|en>/...
    assert {n for n in migrations if "/versions/" in n and n.endswith(".py")}
    assert "digest/samples/feed.xml" in names
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "digest = digest.cli:main" in archive.read(entry_points).decode()


def test_a_wheel_built_from_the_sdist_holds_the_same_files(wheel: Path, tmp_path: Path) -> None:
    sdist = _build("sdist", ROOT, tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (source,) = (tmp_path / "unpacked").iterdir()
    again = _build("wheel", source, tmp_path / "again")
    assert _names(again) == _names(wheel)
