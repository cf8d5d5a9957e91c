"""`check_templates`: the built-ins are clean in both languages; each kind of problem is
reported with its file and line, and the fatal ones (a template that does not compile, a
digest without its unsubscribe link or postal address) are marked fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Settings
from digest.errors import InvalidInput
from digest.render.checks import TemplateProblem, check_templates
from tests.helpers.template_overrides import builtin, insert_line, override, replace


def _only(problems: list[TemplateProblem]) -> TemplateProblem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def _line_of(name: str, needle: str) -> int:
    lines = builtin(name).splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


def test_the_builtin_templates_are_clean_in_both_languages(settings: Settings) -> None:
    assert check_templates(settings, None) == []


def test_a_folder_that_is_not_there_is_refused(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist or is not a folder"):
        check_templates(settings, tmp_path / "missing")


def test_a_syntax_error_with_its_line(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "welcome.txt.j2").write_text("line one\n{% if %}\n", encoding="utf-8")
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "email/welcome.txt.j2"),
        2,
        True,
    )
    assert "Expected an expression" in problem.message
    assert str(problem).startswith(f"{tmp_path}/email/welcome.txt.j2:2: ")


def test_a_syntax_error_in_a_web_template(settings: Settings, tmp_path: Path) -> None:
    override(tmp_path, "web/problem.html.j2", insert_line(3, "{% for %}"))
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "web/problem.html.j2"),
        3,
        True,
    )


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("<p>{{ brand.nme }}</p>", "brand has no 'nme'"),
        ("<p>{{ list_nme }}</p>", "unknown variable 'list_nme': no web page is given it"),
    ],
    ids=["brand-attribute", "variable"],
)
def test_an_unknown_name_in_a_web_page_with_its_line(
    settings: Settings, tmp_path: Path, line: str, says: str
) -> None:
    override(tmp_path, "web/unsubscribed.html.j2", insert_line(9, line))
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "web/unsubscribed.html.j2"),
        9,
        True,
    )
    assert says in problem.message


def test_names_the_routes_give_and_names_a_page_defines_are_known(
    settings: Settings, tmp_path: Path
) -> None:
    override(
        tmp_path,
        "web/unsubscribed.html.j2",
        insert_line(
            9, "{% set own = 1 %}<p>{{ own }} {{ list_name }} {{ brand.muted_colour }}</p>"
        ),
    )
    assert check_templates(settings, tmp_path) == []


def test_an_unknown_variable_with_the_line_it_is_used_on(
    settings: Settings, tmp_path: Path
) -> None:
    override(tmp_path, "email/partials/article.mjml.j2", insert_line(3, "{{ card.no_such }}"))
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "email/partials/article.mjml.j2"),
        3,
        True,
    )
    assert "no_such" in problem.message and problem.message.endswith("[ar, en]") is False


def test_an_unknown_variable_in_one_language_only_says_which(
    settings: Settings, tmp_path: Path
) -> None:
    override(
        tmp_path,
        "email/confirmation.txt.j2",
        insert_line(1, '{% if lang == "en" %}{{ english_only }}{% endif %}'),
    )
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.line, problem.fatal) == (1, True)
    assert "english_only" in problem.message and problem.message.endswith("[en]")


def test_an_unknown_variable_in_the_and_more_part_of_a_long_digest(
    settings: Settings, tmp_path: Path
) -> None:
    """Only a digest over the budget shows "and N more": the check renders one."""
    lines = len(builtin("email/digest.txt.j2").splitlines())
    override(
        tmp_path,
        "email/digest.txt.j2",
        insert_line(lines + 1, "{% if more %}{{ more.no_such }}{% endif %}"),
    )
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "email/digest.txt.j2"),
        lines + 1,
        True,
    )


def test_an_mjml_error_with_its_line(settings: Settings, tmp_path: Path) -> None:
    spacer = '<mj-section padding="0 0 12px">'
    override(tmp_path, "email/digest.mjml.j2", replace(spacer, "<mj-section padding=0>"))
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "email/digest.mjml.j2"),
        _line_of("email/digest.mjml.j2", spacer),
        True,
    )
    assert "MJML does not compile" in problem.message


def test_a_missing_plain_text_twin_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "promo.mjml.j2").write_text(
        builtin("email/confirmation.mjml.j2"), encoding="utf-8"
    )
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "email/promo.mjml.j2"),
        1,
        False,
    )
    assert "no plain-text twin email/promo.txt.j2" in problem.message


def _budget(settings: Settings, size: int) -> Settings:
    render = settings.render.model_copy(update={"max_html_bytes": size})
    return settings.model_copy(update={"render": render})


def test_a_digest_over_the_budget_is_a_warning_when_articles_can_be_dropped(
    settings: Settings,
) -> None:
    problems = check_templates(_budget(settings, 20_000), None)
    assert {(p.file, p.line, p.fatal) for p in problems} == {("email/digest.mjml.j2", 1, False)}
    assert all("over render.max_html_bytes (20000)" in p.message for p in problems)
    assert "articles would be dropped" in problems[0].message


def test_a_digest_over_the_budget_even_without_articles_is_fatal(
    settings: Settings, tmp_path: Path
) -> None:
    bulk = '<mj-raw><div style="display:none">{{ "x" * 25000 }}</div></mj-raw>'
    override(
        tmp_path,
        "email/digest.mjml.j2",
        replace("{% block content %}", f"{{% block content %}}{bulk}"),
    )
    problem = _only(check_templates(_budget(settings, 20_000), tmp_path))
    assert (problem.file, problem.line, problem.fatal) == (
        str(tmp_path / "email/digest.mjml.j2"),
        1,
        True,
    )
    assert "even without articles" in problem.message


def test_a_digest_without_the_unsubscribe_link_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    override(tmp_path, "email/layout.mjml.j2", replace('href="{{ unsubscribe_url }}"', 'href="#"'))
    override(tmp_path, "email/partials/footer.txt.j2", replace("{{ unsubscribe_url }}", ""))
    problems = check_templates(settings, tmp_path)
    assert [(p.file, p.line, p.fatal) for p in problems] == [
        ("email/digest.mjml.j2", 1, True),
        ("email/digest.txt.j2", 1, True),
    ]
    assert "the digest's HTML" in problems[0].message
    assert "the digest's text" in problems[1].message
    assert all("refused" in p.message and "unsubscribe link" in p.message for p in problems)


def test_a_digest_without_the_postal_address_is_refused(settings: Settings, tmp_path: Path) -> None:
    for name in ("email/layout.mjml.j2", "email/partials/footer.txt.j2"):
        override(tmp_path, name, lambda text: text.replace("brand.postal_address", "brand.name"))
    problems = check_templates(settings, tmp_path)
    assert [(p.file, p.line, p.fatal) for p in problems] == [
        ("email/digest.mjml.j2", 1, True),
        ("email/digest.txt.j2", 1, True),
    ]
    assert all("postal address" in p.message for p in problems)


def test_a_digest_with_the_address_in_html_only_is_refused_for_its_text(
    settings: Settings, tmp_path: Path
) -> None:
    name = "email/partials/footer.txt.j2"
    override(tmp_path, name, lambda text: text.replace("brand.postal_address", "brand.name"))
    problem = _only(check_templates(settings, tmp_path))
    assert (problem.file, problem.fatal) == ("email/digest.txt.j2", True)
    assert "postal address" in problem.message
