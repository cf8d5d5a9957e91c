"""`digest doctor`: one line per check, the JSON document, and the exit codes, against a
real aiosmtpd, a /healthz server, migrated and unmigrated databases and a DKIM key."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.send.dkim import txt_record
from tests.helpers.cli import Cli
from tests.helpers.dns_server import dns_server, txt_strings
from tests.helpers.doctor import health_server, rsa_key_file
from tests.helpers.smtp_sink import SmtpSink


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but never listening: connections to it are refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _sets(**values: object) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def _everything_reachable(sink: SmtpSink, web: str, key: Path, nameserver: str) -> list[str]:
    return [
        *_sets(**{"smtp.port": sink.port, "web.base_url": web}),
        *_sets(**{"dkim.selector": "mail", "dkim.private_key_path": key}),
        *_sets(**{"dkim.nameserver": nameserver}),
    ]


def test_a_working_installation_exits_0_and_finds_the_txt_record(cli: Cli, tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    record = txt_strings(txt_record("mail", "news.example.org", rsa_key_file(key)))
    zone = {"mail._domainkey.news.example.org": [record]}
    with SmtpSink() as sink, health_server() as web, dns_server(zone) as dns:
        result = cli(*_everything_reachable(sink, web, key, dns.address), "doctor")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = [line.split(":")[0].split(maxsplit=1)[1] for line in lines]
    assert names == [
        "settings",
        "secret key",
        "postal address",
        "database",
        "time zones",
        "smtp",
        "smtp tls",
        "smtp auth",
        "smtp size",
        "smtp sender",
        "web base_url",
        "web healthz",
        "dkim",
        "alignment",
        "templates",
    ]
    # development on loopback with the placeholder key: a warning, with its fix
    assert lines[1].startswith("warn  secret key: ")
    assert "fix: set DIGEST_WEB__SECRET_KEY" in lines[1]
    assert all(line.startswith("ok ") for line in lines[2:])
    assert "mail._domainkey.news.example.org published and matching" in lines[12]


def test_a_published_record_of_another_key_fails_in_json(
    cli: Cli, tmp_path: Path, refused_port: int
) -> None:
    key = tmp_path / "dkim.pem"
    rsa_key_file(key)
    other = txt_strings(txt_record("mail", "news.example.org", rsa_key_file(tmp_path / "old.pem")))
    with dns_server({"mail._domainkey.news.example.org": [other]}) as dns:
        args = _sets(**{"dkim.selector": "mail", "dkim.private_key_path": key})
        args += _sets(**{"smtp.port": refused_port, "dkim.nameserver": dns.address})
        result = cli(*args, "doctor", "--json")
    assert result.exit_code == 1, result.output
    by_name = {check["name"]: check for check in json.loads(result.output)["checks"]}
    assert by_name["dkim"]["status"] == "fail"
    assert by_name["dkim"]["detail"].endswith(
        "the TXT record at mail._domainkey.news.example.org holds a different public key than "
        f"dkim.private_key_path ({key}): receivers will fail every signature"
    )


def test_json_gives_every_check_and_the_overall_status(
    cli: Cli, tmp_path: Path, refused_port: int
) -> None:
    key = tmp_path / "dkim.pem"
    rsa_key_file(key)
    with health_server() as web:
        args = _sets(**{"smtp.port": refused_port, "web.base_url": web})
        result = cli(*args, "doctor", "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert document["status"] == "fail"
    assert {tuple(check) for check in document["checks"]} == {("name", "status", "detail", "fix")}
    by_name = {check["name"]: check for check in document["checks"]}
    assert by_name["smtp"]["status"] == "fail"
    assert by_name["database"] == {**by_name["database"], "status": "ok", "fix": ""}
    assert "smtp tls" not in by_name  # nothing more to ask a relay that does not answer


def test_an_unmigrated_database_fails_with_digest_db_upgrade(
    db_url: str, refused_port: int
) -> None:
    cli = Cli(db_url)  # no `engine` fixture: the database was never migrated
    args = _sets(**{"smtp.port": refused_port, "web.base_url": f"http://127.0.0.1:{refused_port}"})
    result = cli(*args, "doctor")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if " database: " in line)
    assert line.startswith("fail  database: ")
    assert line.endswith("fix: run `digest db upgrade`")


def test_settings_that_do_not_load_are_the_one_failing_line(cli: Cli) -> None:
    result = cli("--set", "smtp.port=99999", "doctor")
    assert result.exit_code == 1
    assert result.output.startswith("fail  settings: ")
    assert "smtp.port" in result.output
    assert len(result.output.splitlines()) == 1


def test_a_placeholder_secret_in_production_fails(cli: Cli) -> None:
    args = _sets(**{"env": "production", "web.base_url": "https://news.example.org"})
    result = cli(*args, "doctor", "--json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["status"] == "fail"
    [check] = document["checks"]
    assert (check["name"], check["status"]) == ("settings", "fail")
    assert "web.secret_key is a placeholder" in check["detail"]


def test_other_commands_still_stop_on_settings_that_do_not_load(cli: Cli) -> None:
    result = cli("--set", "smtp.port=99999", "lists", "list")
    assert result.exit_code != 0
    assert "smtp.port" in result.output
