"""Fixed sample digests, in Arabic and English, for `digest templates check`: every part a
template can show (editor's note, lead story, sections, images or not, summaries or not,
reading times, tracked links), so an unknown variable in any of them shows up."""

from __future__ import annotations

from datetime import date

from digest.catalog.views import ArticleView, TopicView
from digest.render.data import Recipient
from digest.selection.segments import Segment

SAMPLE_BASE = "https://news.example.org"
SAMPLE_DAY = date(2025, 3, 1)  # 1 Ramadan 1446: both calendars have a date
SAMPLE_LIST = {"ar": "النشرة اليومية", "en": "The daily digest"}
SAMPLE_TOPICS = (
    TopicView("economy", "اقتصاد", "Economy"),
    TopicView("technology", "تقنية", "Technology"),
    TopicView("sports", "رياضة", "Sports"),
)
# Per language: (title, summary) of each sample article.
_TEXTS = {
    "ar": (
        ("ارتفاع مؤشر S&P 500 بنسبة 1.5% في جلسة الخميس", "قال محللون إن المؤشرات تحسّنت."),
        ("البنك المركزي يبقي أسعار الفائدة دون تغيير", ""),
        ("تطبيق جديد لتعلّم العربية يتصدر المتاجر", "أطلقت شركة ناشئة تطبيقاً مجانياً."),
        ("شريحة أسرع بنسبة 40% لأجهزة الحاسوب", "تقول الشركة إنها تستهلك طاقة أقل."),
        ("المنتخب يتأهل إلى نهائي البطولة", "فاز المنتخب بهدفين دون رد."),
        ("انطلاق الدوري بمشاركة 18 نادياً", ""),
    ),
    "en": (
        ("S&P 500 up 1.5% on Thursday", "Analysts said the indicators improved."),
        ("Central bank holds interest rates", ""),
        ("A new app for learning Arabic tops the stores", "A start-up launched a free app."),
        ("A chip 40% faster for laptops", "The company says it uses less power."),
        ("The national team reaches the final", "The team won two-nil."),
        ("The league starts with 18 clubs", ""),
    ),
}


def sample_articles(locale: str) -> tuple[ArticleView, ...]:
    """Six articles over the three sample topics; some without image, summary or length."""
    slugs = [topic.slug for topic in SAMPLE_TOPICS]
    return tuple(
        ArticleView(
            id=number,
            title=title,
            url=f"https://www.example.org/articles/{number}",
            summary=summary,
            image_url=f"https://www.example.org/images/{number}.jpg" if number % 2 else None,
            topics=(slugs[(number - 1) // 2],),
            body_chars=1500 * number if number != 4 else 0,
        )
        for number, (title, summary) in enumerate(_TEXTS[locale], 1)
    )


def sample_segment(locale: str, *, tracking: bool = True) -> Segment:
    """A daily digest with an editor's note and a lead story above the topic sections."""
    note = {"ar": "عدد خاص بمناسبة شهر رمضان.", "en": "A special issue for Ramadan."}
    return Segment(
        articles=sample_articles(locale),
        topics=SAMPLE_TOPICS,
        date=SAMPLE_DAY,
        list_name=SAMPLE_LIST[locale],
        locale=locale,
        tracking=tracking,
        lead=1,
        note=note[locale],
    )


def sample_recipient(locale: str, *, unsubscribe_token: str = "unsubscribe-token") -> Recipient:
    """A named reader with placeholder tokens in every link."""
    return Recipient(
        name="سارة" if locale == "ar" else "Sarah",
        view_token="view-token",
        unsubscribe_token=unsubscribe_token,
        preferences_token="preferences-token",
        open_token="open-token",
        click_token="click-token",
        confirm_token="confirm-token",
    )
