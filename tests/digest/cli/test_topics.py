"""`digest topics` and `digest lists` through the CLI, including their errors."""

from __future__ import annotations

import json

from tests.helpers.cli import Cli


def test_add_and_list_topics(cli: Cli) -> None:
    cli.ok("topics", "add", "economy", "--name", "اقتصاد", "--name-en", "Economy", "-k", "نفط")
    listed = json.loads(cli.ok("topics", "list", "--json").stdout)
    assert listed == [
        {
            "slug": "economy",
            "name": "اقتصاد",
            "name_en": "Economy",
            "keywords": ["نفط"],
            "aliases": [],
        }
    ]


def test_duplicate_topic_is_one_clear_line(cli: Cli) -> None:
    cli.ok("topics", "add", "economy", "--name", "اقتصاد")
    result = cli("topics", "add", "economy", "--name", "اقتصاد")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: topic 'economy' already exists"


def test_bad_slug(cli: Cli) -> None:
    result = cli("topics", "add", "Economy News", "--name", "اقتصاد")
    assert result.exit_code == 1
    assert "topic slug 'Economy News' must be" in result.stderr


def test_lists_create_show_delete(cli: Cli) -> None:
    cli.ok("topics", "add", "economy", "--name", "اقتصاد")
    cli.ok("topics", "add", "sports", "--name", "رياضة")
    cli.ok(
        "lists",
        "create",
        "daily",
        "--name",
        "النشرة",
        "-t",
        "sports",
        "-t",
        "economy",
        "--hour",
        "6",
    )
    shown = json.loads(cli.ok("lists", "show", "daily", "--json").stdout)
    assert shown["topics"] == ["sports", "economy"]
    assert shown["hour"] == 6
    assert shown["cadence"] == "daily"
    assert json.loads(cli.ok("lists", "list", "--json").stdout)[0]["slug"] == "daily"
    cli.ok("subscribers", "add", "a@example.org", "--list", "daily")
    assert "with 1 subscriptions" in cli.ok("lists", "delete", "daily", "--yes").stdout
    assert cli("lists", "show", "daily").exit_code == 1


def test_lists_errors(cli: Cli) -> None:
    assert "unknown topic 'nope'" in cli("lists", "create", "d", "--name", "x", "-t", "nope").stderr
    assert (
        "cadence 'hourly'"
        in cli("lists", "create", "d", "--name", "x", "--cadence", "hourly").stderr
    )
    assert "hour 24" in cli("lists", "create", "d", "--name", "x", "--hour", "24").stderr
    cli.ok("lists", "create", "d", "--name", "x")
    assert "already exists" in cli("lists", "create", "d", "--name", "x").stderr
    assert cli("lists", "delete", "d", input="n\n").exit_code != 0
    assert cli.ok("lists", "show", "d")


def test_missing_schema_is_reported(tmp_path: object) -> None:
    missing = Cli(f"sqlite:///{tmp_path}/none.db")
    result = missing("topics", "list")
    assert result.exit_code == 1
    assert "run `digest db upgrade`" in result.stderr
    assert "Traceback" not in result.output
