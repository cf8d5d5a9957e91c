"""Locating MJML mistakes, since MRML's own errors carry no usable position."""

from __future__ import annotations

from digest.render.mjml_errors import find_problem

HEAD = "<mjml>\n<mj-body>\n"


def test_well_formed_document_has_no_problem() -> None:
    source = HEAD + "<mj-section><mj-column><mj-text>a<br>b</mj-text></mj-column></mj-section>\n"
    assert find_problem(source + "<!--[if mso]><table><![endif]-->\n</mj-body></mjml>") is None


def test_unclosed_paragraph_unquoted_attribute_and_control_character() -> None:
    unclosed = find_problem(HEAD + "<mj-text><p>x</mj-text>\n</mj-body></mjml>")
    assert unclosed is not None and (unclosed.line, unclosed.reason) == (3, "<p> is never closed")
    unquoted = find_problem(HEAD + "<mj-text>\n<a href=x>y</a></mj-text>\n</mj-body></mjml>")
    assert unquoted is not None and unquoted.line == 4 and "malformed tag" in unquoted.reason
    control = find_problem(HEAD + "<mj-text>a\x0bb</mj-text></mj-body></mjml>")
    assert control is not None and control.reason == "control character U+000B"
    never = find_problem(HEAD + "<mj-section>\n</mj-body></mjml>")
    assert never is not None and never.reason == "<mj-section> is never closed"
