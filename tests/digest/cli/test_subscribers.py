"""`digest subscribers` end to end: the newcomer's 1,000-row import, export round trip, erase."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import Cli
from tests.helpers.paths import ROOT


def _setup(cli: Cli) -> None:
    cli.ok("topics", "add", "politics", "--name", "سياسة")
    cli.ok("topics", "add", "economy", "--name", "اقتصاد")
    cli.ok("lists", "create", "daily", "--name", "النشرة اليومية")


def _people_csv(path: Path, good: int, bad: int) -> set[int]:
    """`good` valid rows and `bad` broken ones spread through the file; returns bad line numbers."""
    bad_lines: set[int] = set()
    lines = ["email,name,topics,timezone,hour"]
    step = max(good // max(bad, 1), 1)
    for i in range(good):
        lines.append(f"user{i}@example.org,مشترك {i},politics|economy,Asia/Riyadh,{i % 24}")
        if len(bad_lines) < bad and i % step == step - 1:
            lines.append(f"broken{i}-at-example.org,x,,,")
            bad_lines.add(len(lines))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad_lines


def test_import_1000_with_10_bad_rows_then_export_and_unsubscribe(cli: Cli, tmp_path: Path) -> None:
    _setup(cli)
    source = tmp_path / "people.csv"
    bad_lines = _people_csv(source, 1000, 10)
    rejects = tmp_path / "rejects.csv"
    result = cli("subscribers", "import", str(source), "--list", "daily", "--rejects", str(rejects))
    assert result.exit_code == 1
    assert "1010 rows: 1000 were added, 0 were updated" in result.stdout
    assert "10 rejected" in result.stdout
    rows = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert {int(r["line"]) for r in rows} == bad_lines
    assert all(r["reason"].startswith("invalid email") for r in rows)

    exported = cli.ok("subscribers", "export", "--list", "daily").stdout
    records = list(csv.DictReader(io.StringIO(exported)))
    assert len(records) == 1000
    cli.ok("subscribers", "unsubscribe", "user7@example.org", "--list", "daily")
    shown = json.loads(cli.ok("subscribers", "show", "user7@example.org", "--json").stdout)
    assert shown["subscriptions"][0]["status"] == "unsubscribed"
    assert (
        len(
            list(
                csv.DictReader(
                    io.StringIO(cli.ok("subscribers", "export", "--list", "daily").stdout)
                )
            )
        )
        == 999
    )


def test_export_import_export_round_trip_is_stable(cli: Cli, tmp_path: Path) -> None:
    _setup(cli)
    source = tmp_path / "in.csv"
    source.write_text(
        "email,name,topics,timezone,hour\n"
        'Reem@Example.org,"ريم, الكاتبة",economy|politics,Africa/Cairo,6\n'
        "omar@example.org,عمر,,America/New_York,\n",
        encoding="utf-8",
    )
    cli.ok("subscribers", "import", str(source), "--list", "daily")
    first = tmp_path / "first.csv"
    cli.ok("subscribers", "export", "--list", "daily", "-o", str(first))
    cli.ok("lists", "create", "copy", "--name", "نسخة")
    cli.ok("subscribers", "import", str(first), "--list", "copy")
    second = tmp_path / "second.csv"
    cli.ok("subscribers", "export", "--list", "copy", "-o", str(second))
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")
    assert 'Reem@example.org,"ريم, الكاتبة",economy|politics,Africa/Cairo,6,ar' in first.read_text(
        encoding="utf-8"
    )


def test_import_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    _setup(cli)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"email,name\nx@example.org," + "ريم".encode("cp1256") + b"\n")
    result = cli("subscribers", "import", str(latin), "--list", "daily")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {latin}: not UTF-8 (byte")
    assert "Traceback" not in result.output
    result = cli("subscribers", "import", str(tmp_path / "none.csv"), "--list", "daily")
    assert "no such file" in result.stderr
    result = cli("subscribers", "import", str(latin), "--list", "nope")
    assert "unknown list 'nope'" in result.stderr


def test_add_show_remove(cli: Cli) -> None:
    _setup(cli)
    cli.ok(
        "subscribers",
        "add",
        "a@Example.org",
        "--list",
        "daily",
        "-t",
        "economy",
        "--timezone",
        "Asia/Dubai",
        "--hour",
        "6",
        "--name",
        "أمل",
    )
    shown = json.loads(cli.ok("subscribers", "show", "a@example.org", "--json").stdout)
    assert shown["timezone"] == "Asia/Dubai"
    assert shown["subscriptions"][0]["topics"] == ["economy"]
    bad = cli("subscribers", "add", "b@example.org", "--list", "daily", "--timezone", "Mars/Base")
    assert bad.exit_code == 1
    assert (
        bad.stderr == "error: unknown timezone 'Mars/Base': use an IANA name such as Asia/Riyadh\n"
    )
    assert cli("subscribers", "remove", "a@example.org", input="n\n").exit_code != 0
    cli.ok("subscribers", "remove", "a@example.org", "--yes")
    assert "no subscriber" in cli("subscribers", "show", "a@example.org").stderr


def test_installed_script_in_a_real_subprocess(tmp_path: Path) -> None:
    # Scenario: an admin uses the installed `digest` console script, not the Python API.
    script = Path(sys.executable).with_name("digest")
    env = {**os.environ, "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'sub.db'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
        )

    assert run("topics", "list").returncode == 1
    assert "digest db upgrade" in run("topics", "list").stderr
    assert run("db", "upgrade").returncode == 0
    assert run("topics", "add", "economy", "--name", "اقتصاد").returncode == 0
    listed = run("topics", "list", "--json")
    assert listed.returncode == 0
    assert json.loads(listed.stdout)[0]["name"] == "اقتصاد"
