"""A sample feed of original Arabic articles and the topics that tag it (for `digest demo`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SampleTopic:
    slug: str
    name: str
    name_en: str
    keywords: tuple[str, ...]
    aliases: tuple[str, ...]


SAMPLE_TOPICS: tuple[SampleTopic, ...] = (
    SampleTopic(
        "politics", "سياسة", "Politics",
        keywords=("انتخابات", "برلمان", "وزير الخارجية", "مجلس الأمن", "الأمم المتحدة", "قمة"),
        aliases=("شؤون سياسية", "أخبار سياسية", "Politics"),
    ),
    SampleTopic(
        "economy", "اقتصاد", "Economy",
        keywords=("نفط", "بورصة", "تضخم", "البنك المركزي", "أسعار الفائدة", "S&P 500", "أوبك"),
        aliases=("مال وأعمال", "أعمال", "Business"),
    ),
    SampleTopic(
        "sports", "رياضة", "Sports",
        keywords=("كرة القدم", "الدوري", "منتخب", "بطولة", "أولمبياد", "مباراة"),
        aliases=("Sport",),
    ),
    SampleTopic(
        "technology", "تقنية", "Technology",
        keywords=("الذكاء الاصطناعي", "تطبيق", "شريحة", "إنترنت", "أمن سيبراني", "5G"),
        aliases=("تكنولوجيا", "علوم وتقنية", "Tech"),
    ),
    SampleTopic(
        "culture", "ثقافة", "Culture",
        keywords=("معرض الكتاب", "رواية", "مهرجان", "سينما", "متحف", "مسرح"),
        aliases=("فنون", "ثقافة وفنون", "Arts"),
    ),
    SampleTopic(
        "health", "صحة", "Health",
        keywords=("لقاح", "مستشفى", "وزارة الصحة", "سكري"),
        aliases=("طب", "Health"),
    ),
)  # fmt: skip

# The topics each sample item should end with (by guid): what tests and the demo rely on.
EXPECTED_TOPICS: dict[str, frozenset[str]] = {
    "sample-0001": frozenset({"economy"}),
    "sample-0002": frozenset({"economy"}),
    "sample-0003": frozenset({"economy"}),
    "sample-0004": frozenset({"politics"}),
    "sample-0005": frozenset({"politics"}),
    "sample-0006": frozenset({"sports"}),
    "sample-0007": frozenset({"sports"}),
    "sample-0008": frozenset({"technology"}),
    "sample-0009": frozenset({"technology"}),
    "sample-0010": frozenset({"culture"}),
    "sample-0011": frozenset({"culture"}),
    "sample-0012": frozenset({"health"}),
    "sample-0013": frozenset({"culture"}),
    "sample-0014": frozenset({"politics"}),
}


def feed_path() -> Path:
    """The sample RSS 2.0 feed (14 items, media:content images, links to news.example.org)."""
    return _HERE / "feed.xml"


def sample_topics() -> list[SampleTopic]:
    """The topics `digest demo` creates so that every sample item is tagged."""
    return list(SAMPLE_TOPICS)
