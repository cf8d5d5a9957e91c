"""deploy/: the systemd units of serve, scheduler and worker hold what running as a service
needs (restart, user, secrets file, the venv's digest, hardening that leaves the state
directory writable), the secrets example names real settings, the proxy points at serve."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from digest.config import Settings
from tests.helpers.paths import ROOT

DEPLOY = ROOT / "deploy"
UNITS = {
    "serve": "serve --host 127.0.0.1 --port 8000",
    "scheduler": "scheduler",
    "worker": "worker",
}
VENV_DIGEST = "/opt/digest/venv/bin/digest"
STATE = "/var/lib/digest"


def _unit(path: Path) -> configparser.RawConfigParser:
    # systemd's format is INI-like: case-sensitive keys, `#` comments, no interpolation.
    parser = configparser.RawConfigParser(strict=True, delimiters=("=",), comment_prefixes="#")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_file_has_what_a_service_needs(name: str) -> None:
    unit = _unit(DEPLOY / f"digest-{name}.service")
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert service["ExecStart"] == f"{VENV_DIGEST} {UNITS[name]}"
    assert service["Restart"] == "on-failure"
    assert service["User"] == "digest"
    assert service["WorkingDirectory"] == STATE
    assert service["EnvironmentFile"] == "/etc/digest/digest.env"
    assert service["Environment"] == "DIGEST_CONFIG=/etc/digest/settings.toml"
    assert service["NoNewPrivileges"] == "true"
    # A read-only system but for the state directory: the SQLite file and the spools.
    assert service["ProtectSystem"] == "strict"
    assert STATE in service["ReadWritePaths"].split()
    assert service["StateDirectory"] == "digest"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_env_example_names_only_settings_that_exist() -> None:
    text = (DEPLOY / "digest.env.example").read_text(encoding="utf-8")
    names = re.findall(r"^#?(DIGEST_[A-Z_]+)=", text, flags=re.MULTILINE)
    assert {"DIGEST_ENV", "DIGEST_WEB__SECRET_KEY", "DIGEST_SMTP__PASSWORD"} <= set(names)
    for name in names:
        model: Any = Settings
        for key in name.removeprefix("DIGEST_").lower().split("__"):
            assert key in model.model_fields, f"{name}: no setting {key!r}"
            model = model.model_fields[key].annotation
    for line in text.splitlines():  # every secret is empty or commented out: no real value
        assert line.startswith("#") or not line.strip() or re.fullmatch(r"[A-Z_]+=\w*", line)


def test_the_proxy_forwards_to_serve_on_loopback() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    serve = _unit(DEPLOY / "digest-serve.service")["Service"]["ExecStart"]
    assert "--host 127.0.0.1 --port 8000" in serve
    assert re.search(r"^\s*reverse_proxy 127\.0\.0\.1:8000\s*$", caddyfile, flags=re.MULTILINE)


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    analyze, true = shutil.which("systemd-analyze"), shutil.which("true")
    if analyze is None or true is None:
        pytest.skip("systemd-analyze is not installed (the check above is the one required)")
    for name in UNITS:  # the venv's digest does not exist here: an executable stands in
        text = (DEPLOY / f"digest-{name}.service").read_text(encoding="utf-8")
        (tmp_path / f"digest-{name}.service").write_text(text.replace(VENV_DIGEST, true))
    units = sorted(str(path) for path in tmp_path.glob("*.service"))
    result = subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
