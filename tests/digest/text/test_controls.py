"""clean_text / clean_line on any Unicode: no NUL, control or bidi override survives, a second
pass changes nothing, and Arabic (harakat, RLM/LRM/ALM, ZWJ/ZWNJ) comes through whole."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from digest.cli.terminal import plain
from digest.text.controls import BIDI_CONTROLS, clean_line, clean_text, control_problem

C0 = [chr(c) for c in range(0x20)]
C1 = [chr(c) for c in range(0x7F, 0xA0)]  # DEL and the C1 block (U+0085 NEL, U+009B CSI)
BIDI = sorted(BIDI_CONTROLS)
CONTROLS = C0 + C1 + BIDI + ["\u2028", "\u2029"]
# Kept: Arabic letters with harakat (fatha, damma, kasra, shadda, sukun, tanwin), the marks
# RLM, LRM and ALM, the joiners ZWJ and ZWNJ, and Arabic-Indic digits.
ARABIC = "بِسْمِ ٱللَّهِ كِتَابٌ مُدَرِّسَةً \u200f\u200e\u061c\u200d\u200c ٠١٢٣٤٥٦٧٨٩ لا"
KEEP = [*ARABIC, "a", " ", "é", "😀", "\u200b"]

# Any character (control or not, every plane, no surrogates), with controls and Arabic drawn
# often enough that every case meets them.
characters = st.one_of(
    st.characters(exclude_categories=["Cs"]), st.sampled_from(CONTROLS), st.sampled_from(KEEP)
)
texts = st.text(characters, max_size=80)

NEVER_IN_TEXT = set(C0 + C1 + BIDI) - {"\t", "\n", "\r"}
NEVER_IN_LINE = set(CONTROLS)


@given(texts)
@example("\x00" + ARABIC + "\u202e\u2066x\u2069\x1b[2J\r\n\t")
def test_clean_text_removes_every_unsafe_character_and_nothing_else(value: str) -> None:
    cleaned = clean_text(value)
    assert not NEVER_IN_TEXT & set(cleaned)
    # Exactly the unsafe characters go: the rest is kept, in order.
    assert cleaned == "".join(c for c in value if c not in NEVER_IN_TEXT)
    assert clean_text(cleaned) == cleaned


@given(texts)
@example("\t\u202e" + ARABIC + "\n\u2028\x00\x85 ")
def test_clean_line_is_one_clean_line(value: str) -> None:
    cleaned = clean_line(value)
    assert not NEVER_IN_LINE & set(cleaned)
    assert cleaned == cleaned.strip()
    assert clean_line(cleaned) == cleaned
    assert control_problem(cleaned) is None
    # Every character that is not a control is still there, in order.
    kept = [c for c in value if c not in NEVER_IN_LINE and not c.isspace()]
    assert [c for c in cleaned if not c.isspace()] == kept


@given(st.text(st.sampled_from(KEEP), max_size=60))
def test_arabic_marks_and_joiners_come_through_whole(value: str) -> None:
    assert clean_text(value) == value
    assert clean_line(value) == value.strip()
    assert control_problem(value) is None


@given(texts)
def test_control_problem_names_what_clean_line_would_remove(value: str) -> None:
    flagged = control_problem(value) is not None
    assert flagged == bool((NEVER_IN_LINE - {"\t"}) & set(value))


@given(texts)
@example("Reem [/bold] \x1b[2J\x1b]0;title\x07 \u202egnp.exe \x9b31m")
def test_terminal_text_holds_no_control_or_escape_sequence(value: str) -> None:
    shown = plain(value)
    assert not NEVER_IN_LINE & set(shown)
    assert plain(shown) == shown


def test_lone_surrogates_become_replacement_characters() -> None:
    # Bytes that were not UTF-8 (an SMTP command, argv, the environment) decode with
    # "surrogateescape": stored as they are, no database or file could encode them.
    for cleaned in (clean_line("caf\udce9@x.org\udcff"), clean_text("caf\udce9@x.org\udcff")):
        assert cleaned == "caf\ufffd@x.org\ufffd"
        cleaned.encode("utf-8")
