"""Topic tagging: by feed, by category spelled differently, by keyword as a whole word."""

from __future__ import annotations

import pytest

from digest.db.models import TagReason, Topic
from digest.ingest.matcher import Tag, TopicIndex

POLITICS, ECONOMY, SPORTS, SECURITY, ARABS = 1, 2, 3, 4, 5


def _index() -> TopicIndex:
    return TopicIndex(
        [
            Topic(
                id=POLITICS,
                slug="politics",
                name="سياسة",
                name_en="Politics",
                keywords=["الانتخابات", "مجلس الأمن"],
                aliases=["شؤون سياسية"],
            ),
            Topic(
                id=ECONOMY,
                slug="economy",
                name="اقتصاد",
                name_en="Economy",
                keywords=["نفط", "S&P 500", "البنك المركزي", "1.5%"],
                aliases=["Business"],
            ),
            Topic(id=SPORTS, slug="sports", name="رياضة", keywords=["كرة القدم", "منتخب"]),
            Topic(id=SECURITY, slug="security", name="أمن", keywords=["داعش"]),
            Topic(id=ARABS, slug="arab-world", name="العالم العربي", keywords=["عرب"]),
        ]
    )


def _tags(
    index: TopicIndex,
    *,
    title: str = "",
    summary: str = "",
    categories: tuple[str, ...] = (),
    feed: dict[int, str] | None = None,
) -> dict[int, Tag]:
    return index.tags(feed_topics=feed or {}, categories=categories, title=title, summary=summary)


def test_feed_default_topics_always_apply() -> None:
    tags = _tags(_index(), title="خبر بلا كلمات مفتاحية", feed={SPORTS: "https://f.example/rss"})
    assert tags == {SPORTS: Tag(SPORTS, TagReason.FEED, "https://f.example/rss")}


def test_category_spelled_differently_matches_name_slug_or_alias() -> None:
    index = _index()
    for category in ["الإقتصاد", "اقتصاد", "الاقتصاد", "اقْتِصَاد", "Economy", "economy", "business"]:
        tags = _tags(index, title="عنوان", categories=(category,))
        assert tags == {ECONOMY: Tag(ECONOMY, TagReason.CATEGORY, category)}, category
    for category in ["سياسه", "السياسة", "شؤون سياسيه", "Politics"]:
        assert POLITICS in _tags(index, categories=(category,)), category
    assert SPORTS in _tags(index, categories=("الرِّيَاضَة",))


def test_category_paths_match_on_any_part() -> None:
    assert ECONOMY in _tags(_index(), categories=("أخبار > اقتصاد",))
    assert ECONOMY in _tags(_index(), categories=("News/Economy",))


def test_unknown_category_gives_nothing() -> None:
    assert _tags(_index(), categories=("منوعات", "اقتصاديات")) == {}


def test_keyword_with_prefixes_and_diacritics() -> None:
    index = _index()
    for title in ["ارتفاع أسعار النفط", "والنفط يتراجع", "بالنفط", "للنِّفْطِ أثر", "ونفط"]:
        tags = _tags(index, title=title)
        assert tags == {ECONOMY: Tag(ECONOMY, TagReason.KEYWORD, "نفط")}, title


def test_keyword_is_a_word_not_a_substring() -> None:
    index = _index()
    # عربة (a cart) contains عرب (Arabs) but is another word.
    assert _tags(index, title="عربة قطار جديدة") == {}
    assert _tags(index, title="عربات الإسعاف") == {}
    assert ARABS in _tags(index, title="قمة العرب في الرياض")
    assert ARABS in _tags(index, title="وللعرب رأي آخر")
    assert _tags(index, title="النفطية") == {}  # suffixes make another word


def test_keyword_in_quotes_and_with_preposition() -> None:
    index = _index()
    for title in ["هجوم يتبناه «داعش»", "ضربة جديدة لداعش", '"داعش" يتراجع', "(داعش)"]:
        assert _tags(index, title=title) == {SECURITY: Tag(SECURITY, TagReason.KEYWORD, "داعش")}


def test_multi_word_keywords() -> None:
    index = _index()
    assert POLITICS in _tags(index, summary="دعوة لمجلس الأمن إلى الانعقاد")
    assert POLITICS not in _tags(index, summary="مجلس إدارة الشركة يناقش الأمن")
    assert SPORTS in _tags(index, title="منتخب كرة القدم")
    assert ECONOMY in _tags(index, title="قرار البنك المركزي")
    assert ECONOMY in _tags(index, title="مؤشر S&P 500 يرتفع")
    assert ECONOMY not in _tags(index, title="S&P تعدل التصنيف")


def test_numbers_match_across_digit_systems() -> None:
    assert ECONOMY in _tags(_index(), title="التضخم يتراجع ١٫٥٪")
    assert ECONOMY in _tags(_index(), title="التضخم يتراجع 1.5%")
    assert ECONOMY not in _tags(_index(), title="التضخم يتراجع 1.55%")


def test_keyword_detail_lists_every_keyword_found() -> None:
    tags = _tags(_index(), title="النفط والبنك المركزي", summary="ثم النفط مرة أخرى")
    assert tags[ECONOMY].detail == "نفط, البنك المركزي"


def test_strongest_reason_wins_feed_then_category_then_keyword() -> None:
    index = _index()
    both = _tags(index, title="النفط", categories=("اقتصاد",))
    assert both[ECONOMY].reason is TagReason.CATEGORY
    all_three = _tags(index, title="النفط", categories=("اقتصاد",), feed={ECONOMY: "u"})
    assert all_three[ECONOMY] == Tag(ECONOMY, TagReason.FEED, "u")


def test_several_topics_at_once() -> None:
    tags = _tags(
        _index(),
        title="المنتخب يفوز",
        summary="والحكومة تعلن موعد الانتخابات",
        categories=("Business",),
    )
    assert set(tags) == {SPORTS, POLITICS, ECONOMY}


def test_topic_without_id_is_refused() -> None:
    with pytest.raises(ValueError, match="no id"):
        TopicIndex([Topic(slug="x", name="x")])
