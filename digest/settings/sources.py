"""Where settings come from (the TOML file, `--set` overrides, DIGEST_* variables) and how
their mistakes are worded: the loading half of digest/config.py."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from digest.errors import ConfigError

DEFAULT_CONFIG = Path("settings.toml")


class DictSource(PydanticBaseSettingsSource):
    """Feeds the parsed TOML file into pydantic-settings as the lowest-priority source."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"settings file {path} not found (use --config or DIGEST_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None


def parse_override(text: str) -> tuple[list[str], str]:
    """`smtp.port=2525` -> (["smtp", "port"], "2525")."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    return key.strip().split("."), value


def nest(overrides: Mapping[str, str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def config_path(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("DIGEST_CONFIG"):
        return Path(environ["DIGEST_CONFIG"])
    return DEFAULT_CONFIG


def check_sections(
    known: Mapping[str, FieldInfo],
    path: Path,
    file_data: Mapping[str, Any],
    init: Mapping[str, Any],
    environ: Mapping[str, str],
) -> None:
    """Refuse a section (or top-level key) no setting has, as an unknown key is refused: a
    misspelt `[smpt]` would otherwise leave every one of its values at the default."""
    found = [(name, str(path)) for name in file_data if name not in known]
    found += [(name, "--set") for name in init if name not in known]
    for variable in environ:
        head, nested, _ = variable.upper().partition("__")
        if nested and head.startswith("DIGEST_") and head[7:].lower() not in known:
            found.append((head[7:].lower(), variable))
    if found:
        name, where = found[0]
        sections = [n for n, f in known.items() if isinstance(f.default, BaseModel)]
        scalars = [n for n in known if n not in sections]
        raise ConfigError(
            f"unknown settings section {name!r} (in {where}): the sections are "
            f"{', '.join(sections)}; top-level keys: {', '.join(scalars)}"
        )


def describe(exc: ValidationError, path: Path) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env_name = "DIGEST_" + "__".join(str(part).upper() for part in error["loc"])
        problems.append(f"{key} ({env_name}): {error['msg']}")
    return f"invalid settings (from {path} and the environment): " + "; ".join(problems)
