"""`[brand]`: defaults are today's look and pass AA; a colour that is not one, a pair below
WCAG AA contrast and an http logo are refused at load naming the setting (exit 2 from the
CLI, nothing sent); the old [render]/[sender] keys still set the brand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session

from digest.config import Settings, load_settings
from digest.errors import ConfigError
from digest.settings.brand import CONTRAST_PAIRS, BrandSettings, ContrastPair, Logo
from digest.text.colours import contrast_ratio, format_ratio
from tests.helpers.cli import Cli
from tests.helpers.paths import ROOT
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import make_world

COLOURS = [name for name in BrandSettings.model_fields if name.endswith("_colour")]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_built_in_look_and_pass_every_pair() -> None:
    brand = Settings().brand
    assert (brand.name, brand.primary_colour, brand.accent_colour) == (
        "أخبار المثال",
        "#0b4f6c",
        "#f0b429",
    )
    assert brand.contrast_problems() == []
    shipped = load_settings(ROOT / "settings.toml").brand
    assert shipped.name_en == "Example News"
    assert shipped.postal_address.startswith("ص.ب.")
    assert shipped.contrast_problems() == []


def test_every_checked_pair_names_colour_settings() -> None:
    for pair in CONTRAST_PAIRS:
        assert {pair.foreground, pair.background} <= set(COLOURS), pair
    # Every colour but the decorative accent is held to a contrast with something.
    checked = {c for p in CONTRAST_PAIRS for c in (p.foreground, p.background)}
    assert set(COLOURS) - checked == {"accent_colour"}


@pytest.mark.parametrize("key", COLOURS)
def test_a_value_that_is_not_a_colour_names_the_setting(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"brand\.{key} \(DIGEST_BRAND__{key.upper()}\).*#rgb"):
        load_settings(ROOT / "settings.toml", {f"brand.{key}": "blue"})


@pytest.mark.parametrize("pair", CONTRAST_PAIRS, ids=lambda p: f"{p.foreground}-{p.background}")
def test_each_pair_below_aa_is_refused_with_both_colours_and_the_ratio(pair: ContrastPair) -> None:
    foreground, background = pair.foreground, pair.background
    back = getattr(BrandSettings(), background)
    # A mid grey against the default background: too close to it whichever it is.
    grey = "#999999" if contrast_ratio(back, "#000") > contrast_ratio(back, "#fff") else "#555555"
    ratio = format_ratio(contrast_ratio(grey, back))
    with pytest.raises(ConfigError) as caught:
        load_settings(ROOT / "settings.toml", {f"brand.{foreground}": grey})
    message = str(caught.value)
    assert f"brand.{foreground} {grey} on brand.{background} {back}" in message
    assert f"contrast of {ratio}; WCAG AA needs 4.5:1" in message
    assert float(ratio.split(":")[0]) < 4.5


def test_a_failing_pair_from_the_file_names_the_file_and_the_ratio(tmp_path: Path) -> None:
    path = _write(tmp_path, '[brand]\nprimary_colour = "#7fb3d5"\n')
    with pytest.raises(ConfigError, match=str(tmp_path)) as caught:
        load_settings(path)
    assert re.search(
        r"brand\.primary_colour #7fb3d5 on brand\.\w+ #\w+ .*2\.\d\d:1", str(caught.value)
    )
    # A dark brand passes when its text is light enough.
    dark = load_settings(
        _write(tmp_path, '[brand]\nprimary_colour = "#000"\nprimary_text_colour = "#ff0"\n')
    )
    assert dark.brand.primary_colour == "#000"


def test_logo_must_be_https_with_its_size(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"brand\.logo_url \(DIGEST_BRAND__LOGO_URL\).*https"):
        load_settings(ROOT / "settings.toml", {"brand.logo_url": "http://cdn.example.org/l.png"})
    with pytest.raises(ConfigError, match=r"brand\.logo_width and brand\.logo_height"):
        load_settings(ROOT / "settings.toml", {"brand.logo_url": "https://cdn.example.org/l.png"})
    loaded = load_settings(
        _write(
            tmp_path,
            '[brand]\nlogo_url = "https://cdn.example.org/l.png"\nlogo_width = 160\n'
            'logo_height = 48\nname_en = "Example News"\nlogo_alt = "شعار"\n',
        )
    )
    assert loaded.brand.view("ar").logo == Logo("https://cdn.example.org/l.png", 160, 48, "شعار")
    # English alt text falls back to the English name, not to the Arabic alt.
    assert loaded.brand.view("en").logo == Logo(
        "https://cdn.example.org/l.png", 160, 48, "Example News"
    )


def test_social_links_from_the_file_or_json_and_only_https(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[brand]\nsocial_links = [{ name = "X", url = "https://x.com/example" }]\n',
    )
    (link,) = load_settings(path).brand.social_links
    assert (link.name, link.url) == ("X", "https://x.com/example")
    flagged = load_settings(
        ROOT / "settings.toml",
        {"brand.social_links": '[{"name": "YouTube", "url": "https://youtube.com/@example"}]'},
    )
    assert [s.name for s in flagged.brand.social_links] == ["YouTube"]
    with pytest.raises(ConfigError, match=r"brand\.social_links\.0\.url .*https"):
        load_settings(path, {"brand.social_links": '[{"name": "X", "url": "http://x.com"}]'})
    with pytest.raises(ConfigError, match=r"brand\.social_links .*JSON list"):
        load_settings(path, {"brand.social_links": "X=https://x.com"})


def test_text_values_refuse_control_characters() -> None:
    with pytest.raises(ConfigError, match=r"brand\.name"):
        load_settings(ROOT / "settings.toml", {"brand.name": "أخبار\nBcc: x@example.org"})


def test_english_view_falls_back_to_the_arabic_values() -> None:
    brand = BrandSettings(name="صحيفة", postal_address="ص.ب. ١", legal_line="سجل تجاري ١")
    english = brand.view("en")
    assert (english.name, english.postal_address, english.legal_line) == (
        "صحيفة",
        "ص.ب. ١",
        "سجل تجاري ١",
    )
    both = BrandSettings(name="صحيفة", name_en="Paper", postal_address_en="PO Box 1")
    assert (both.view("en").name, both.view("en").postal_address) == ("Paper", "PO Box 1")
    assert both.view("ar").name == "صحيفة" and both.view("ar").logo is None


def test_old_render_and_sender_keys_still_set_the_brand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _write(
        tmp_path,
        '[sender]\npostal_address = "ص.ب. 9"\n'
        '[render]\npublisher_name = "القديم"\npublisher_name_en = "Old"\n',
    )
    brand = load_settings(old).brand
    assert (brand.name, brand.name_en, brand.postal_address) == ("القديم", "Old", "ص.ب. 9")
    monkeypatch.setenv("DIGEST_RENDER__PUBLISHER_NAME", "من البيئة")
    assert load_settings(old).brand.name == "من البيئة"
    # A [brand] key wins over the old key, wherever each comes from.
    assert load_settings(old, {"brand.name": "الجديد"}).brand.name == "الجديد"


def test_bad_brand_through_the_cli_exits_2_in_one_line_and_sends_nothing(
    cli: Cli, session: Session
) -> None:
    make_world(session, hour=0)
    bad = {
        "brand.primary_colour=blue": "brand.primary_colour",
        "brand.primary_colour=#7fb3d5": "brand.primary_colour #7fb3d5 on",
        "brand.logo_url=http://cdn.example.org/logo.png": "brand.logo_url",
    }
    with SmtpSink() as sink:
        for setting, named in bad.items():
            result = cli(
                "--set", f"smtp.port={sink.port}", "--set", setting, "send", "--list", "daily"
            )
            assert result.exit_code == 2, result.output
            assert named in result.stderr and "Traceback" not in result.output
            assert len(result.stderr.strip().splitlines()) == 1
        assert sink.messages == []
