"""Templates from the publisher's folder over the built-ins: a file there replaces only the
built-in file of the same name, in emails and web pages; catalogs stay the built-in ones
unless the folder has `locale/`; a templates_dir that is not a folder is refused at load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from digest.bundled import templates_dir
from digest.config import Settings, load_settings
from digest.errors import ConfigError
from digest.render.loaders import locale_dir, override_dir, template_folders, template_loader
from digest.web import create_app
from tests.helpers.paths import ROOT
from tests.helpers.render_samples import recipient, renderer, segment
from tests.helpers.template_overrides import override, replace


def _sent(settings: Settings, folder: Path | None, locale: str = "ar") -> tuple[str, str]:
    compiled = renderer(settings, templates_dir=folder).compile_digest(segment(3, locale=locale))
    message = compiled.personalise(recipient())
    return message.html, message.text


@pytest.mark.parametrize("locale", ["ar", "en"])
def test_an_html_partial_override_changes_only_that_part(
    settings: Settings, tmp_path: Path, locale: str
) -> None:
    override(
        tmp_path,
        "email/partials/header.mjml.j2",
        replace("{{ list_name|bidi }}", "OWN-HEADER {{ list_name|bidi }}"),
    )
    html, text = _sent(settings, tmp_path, locale)
    builtin_html, builtin_text = _sent(settings, None, locale)
    assert html.count("OWN-HEADER ") == 1
    assert html.replace("OWN-HEADER ", "") == builtin_html
    assert text == builtin_text


def test_a_text_partial_override_changes_only_the_text_footer(
    settings: Settings, tmp_path: Path
) -> None:
    override(tmp_path, "email/partials/footer.txt.j2", replace("--\n", "-- own footer --\n"))
    html, text = _sent(settings, tmp_path)
    builtin_html, builtin_text = _sent(settings, None)
    assert html == builtin_html
    assert "-- own footer --" in text
    assert text.replace("-- own footer --", "--", 1) == builtin_text


def test_an_override_web_template_changes_the_page(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    page = tmp_path / "web" / "problem.html.j2"
    page.parent.mkdir(parents=True)
    page.write_text(
        '{% extends "web/base.html.j2" %}{% block title %}Oops{% endblock %}'
        "{% block content %}<p>Our own page: {{ problem }}</p>{% endblock %}",
        encoding="utf-8",
    )
    render = settings.render.model_copy(update={"templates_dir": str(tmp_path)})
    own = settings.model_copy(update={"render": render})
    with TestClient(create_app(own, engine)) as client:
        answer = client.get("/u/not-a-token")
    assert answer.status_code == 400
    assert "<p>Our own page: invalid_link</p>" in answer.text
    assert 'dir="rtl"' in answer.text  # the built-in base.html.j2 still lays the page out
    with TestClient(create_app(settings, engine)) as client:
        assert "Our own page" not in client.get("/u/not-a-token").text


def test_the_publishers_folder_comes_first_then_the_builtins(tmp_path: Path) -> None:
    builtin = templates_dir().resolve()
    assert template_folders(None) == (builtin,)
    assert template_folders(templates_dir()) == (builtin,)
    assert template_folders(tmp_path) == (tmp_path.resolve(), builtin)
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "greeting.txt.j2").write_text("own", encoding="utf-8")
    loader = template_loader(tmp_path)
    source, filename, _ = loader.get_source(None, "email/greeting.txt.j2")  # type: ignore[arg-type]
    assert (source, Path(filename or "")) == ("own", tmp_path.resolve() / "email/greeting.txt.j2")
    _, filename, _ = loader.get_source(None, "email/digest.txt.j2")  # type: ignore[arg-type]
    assert Path(filename or "") == builtin / "email/digest.txt.j2"


def test_catalogs_stay_builtin_unless_the_folder_has_locale(tmp_path: Path) -> None:
    builtin = templates_dir().resolve() / "locale"
    assert locale_dir(None) == builtin
    assert locale_dir(tmp_path) == builtin
    shutil.copytree(templates_dir() / "locale", tmp_path / "locale")
    assert locale_dir(tmp_path) == tmp_path.resolve() / "locale"


def test_settings_name_the_publishers_folder(tmp_path: Path) -> None:
    loaded = load_settings(ROOT / "settings.toml", {"render.templates_dir": str(tmp_path)})
    assert override_dir(loaded) == tmp_path
    assert override_dir(load_settings(ROOT / "settings.toml")) is None


@pytest.mark.parametrize(
    ("kind", "reason"), [("missing", "does not exist"), ("file", "not a folder")]
)
def test_a_templates_dir_that_is_not_a_folder_is_refused_at_load(
    tmp_path: Path, kind: str, reason: str
) -> None:
    target = tmp_path / "mine"
    if kind == "file":
        target.write_text("not a folder", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(ROOT / "settings.toml", {"render.templates_dir": str(target)})
    assert "render.templates_dir (DIGEST_RENDER__TEMPLATES_DIR)" in str(refused.value)
    assert reason in str(refused.value)


def test_a_folder_with_its_own_catalogs_changes_the_wording(
    settings: Settings, tmp_path: Path
) -> None:
    shutil.copytree(templates_dir() / "locale", tmp_path / "locale")
    mo = tmp_path / "locale" / "en" / "LC_MESSAGES" / "messages.mo"
    with mo.open("rb") as handle:
        catalog = read_mo(handle)
    catalog["Unsubscribe:"].string = "Leave this list:"
    with mo.open("wb") as handle:
        write_mo(handle, catalog)
    _, text = _sent(settings, tmp_path, "en")
    _, builtin_text = _sent(settings, None, "en")
    assert "Leave this list:" in text and "Leave this list:" not in builtin_text
    assert text.replace("Leave this list:", "Unsubscribe:") == builtin_text
