"""Every compiled digest carries the unsubscribe link and the postal address, in HTML and
text (digest/render/required.py): a publisher's template that drops either, even only
under a condition the sample of `digest templates check` meets, is refused before sending."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Settings
from digest.errors import TemplateError
from tests.helpers.render_samples import renderer, segment
from tests.helpers.template_overrides import override, replace


def _branded(settings: Settings, address: str) -> Settings:
    brand = settings.brand.model_copy(update={"postal_address": address, "postal_address_en": ""})
    return settings.model_copy(update={"brand": brand})


@pytest.mark.parametrize("locale", ["ar", "en"])
def test_the_built_in_digest_carries_both_in_both_parts(settings: Settings, locale: str) -> None:
    branded = _branded(settings, "ص.ب. 12345، الرياض & Co <HQ>")
    compiled = renderer(branded).compile_digest(segment(3, locale=locale))
    assert "unsubscribe" in compiled.html_template.names
    assert "unsubscribe" in compiled.text_template.names


def test_a_footer_that_drops_the_unsubscribe_link_is_refused_naming_the_folder(
    settings: Settings, tmp_path: Path
) -> None:
    override(
        tmp_path,
        "email/partials/footer.txt.j2",
        replace("{% if unsubscribe_url %}", "{% if unsubscribe_url and note %}"),
    )
    render = renderer(settings, templates_dir=tmp_path)
    with pytest.raises(TemplateError) as caught:
        render.compile_digest(segment(3))  # no editor's note: the condition is false
    message = str(caught.value)
    assert "text part lacks the unsubscribe link" in message
    assert f"render.templates_dir ({tmp_path})" in message
    assert "nothing is sent" in message
    with_note = segment(3, note="كلمة المحرر")
    assert "unsubscribe" in render.compile_digest(with_note).text_template.names


def test_a_layout_that_drops_the_postal_address_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    override(
        tmp_path,
        "email/layout.mjml.j2",
        replace("{% if brand.postal_address %}", "{% if false %}"),
    )
    branded = _branded(settings, "P.O. Box 7, Riyadh")
    with pytest.raises(TemplateError, match=r"HTML part lacks the postal address"):
        renderer(branded, templates_dir=tmp_path).compile_digest(segment(3))
    # Without an address set (development) there is nothing to look for.
    renderer(_branded(settings, ""), templates_dir=tmp_path).compile_digest(segment(3))


def test_a_template_that_does_not_compile_names_the_publishers_folder(
    settings: Settings, tmp_path: Path
) -> None:
    override(tmp_path, "email/digest.txt.j2", replace("{%", "{% if %}{%"))
    with pytest.raises(TemplateError, match=r"^render\.templates_dir \("):
        renderer(settings, templates_dir=tmp_path)
