"""Benchmark rendering: full Jinja2 + MJML per subscriber vs compile once per segment + personalise.

Run: python bench/render_bench.py [--subscribers 10000] [--segments 20] [--articles 20]
                                  [--full-sample 300]
Single process, single thread (one core). Times are CPU time of this process
(time.process_time), so other load on the machine does not count against it; wall-clock
figures are printed too. Variant (a) is timed on a sample of subscribers and extrapolated;
variant (b) runs for every subscriber. Tracking is on (click and open tokens).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.config import load_settings  # noqa: E402
from digest.render.renderer import (  # noqa: E402
    ArticleView,
    CompiledDigest,
    Recipient,
    Renderer,
    RenderOptions,
    Segment,
    TopicView,
)

TOPICS = [
    TopicView("economy", "اقتصاد", "Economy"),
    TopicView("politics", "سياسة", "Politics"),
    TopicView("tech", "تقنية", "Technology"),
    TopicView("sports", "رياضة", "Sports"),
    TopicView("culture", "ثقافة", "Culture"),
    TopicView("health", "صحة", "Health"),
]
SUMMARY = (
    "أعلنت الحكومة حزمة إجراءات جديدة لدعم الشركات الصغيرة والمتوسطة، تشمل تمويلًا بقيمة "
    "2.5 مليار دولار وتسهيلات ضريبية، وقال الوزير إن «الهدف هو خلق 50 ألف وظيفة» خلال عامين."
)


def _articles(rng: random.Random, count: int) -> list[ArticleView]:
    return [
        ArticleView(
            id=number,
            title=f"عنوان الخبر رقم {number}: ارتفاع مؤشر S&P 500 بنسبة {rng.randint(1, 9)}.5%",
            url=f"https://news.example.org/2026/11/story-{number}",
            summary=SUMMARY,
            image_url=f"https://img.example.org/2026/11/{number}.jpg",
            topics=(TOPICS[number % len(TOPICS)].slug,),
            body_chars=rng.randint(1500, 9000),
        )
        for number in range(1, count + 1)
    ]


def _segments(count: int, articles: int) -> list[Segment]:
    rng = random.Random(7)
    pool = _articles(rng, 200)
    segments = []
    for index in range(count):
        order = rng.sample(TOPICS, rng.randint(2, len(TOPICS)))
        chosen = {t.slug for t in order}
        matching = [a for a in pool if a.topics[0] in chosen][:articles]
        segments.append(
            Segment(
                articles=tuple(matching),
                topics=tuple(order),
                date=date(2026, 11, 28),
                list_name="النشرة اليومية",
                locale="en" if index % 5 == 4 else "ar",
                tracking=True,
            )
        )
    return segments


def _recipient(number: int) -> Recipient:
    # Tokens as long as itsdangerous-signed ones (~90 characters).
    def token(purpose: str) -> str:
        return f"{purpose}{number:08d}.".ljust(60, "x") + ".aGVsbG8td29ybGQtc2lnbmF0dXJl"

    return Recipient(
        name=f"مشترك {number}" if number % 3 else "",
        view_token=token("v"),
        unsubscribe_token=token("u"),
        preferences_token=token("p"),
        open_token=token("o"),
        click_token=token("c"),
    )


def _timed(action: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) spent in `action`."""
    cpu, wall = time.process_time(), time.perf_counter()
    action()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--articles", type=int, default=20, help="articles per segment")
    parser.add_argument("--full-sample", type=int, default=300, help="subscribers timed for (a)")
    args = parser.parse_args()

    settings = load_settings(ROOT / "settings.toml", {"web.base_url": "https://news.example.org"})
    renderer = Renderer(RenderOptions.from_settings(settings))
    segments = _segments(args.segments, args.articles)
    recipients = [_recipient(n) for n in range(args.subscribers)]
    print(
        f"{args.subscribers} subscribers over {len(segments)} segments, "
        f"{args.articles} articles per segment, tracking on, one core"
    )

    # (a) Full render per subscriber: Jinja2 + MJML every time (timed on a sample).
    sample = min(args.full_sample, args.subscribers)
    sizes: list[int] = []

    def full() -> None:
        for number in range(sample):
            segment = segments[number % len(segments)]
            message = renderer.compile_digest(segment).personalise(recipients[number])
            sizes.append(len(message.html))

    full_cpu, full_wall = _timed(full)
    full_each = full_cpu / sample
    full_total = full_each * args.subscribers
    print(
        f"(a) full render per subscriber: {1 / full_each:,.0f} messages/s "
        f"({full_each * 1000:.2f} ms CPU each, wall {full_wall / sample * 1000:.2f} ms; timed on "
        f"{sample} subscribers, extrapolated to {args.subscribers}: {full_total:.1f} s)"
    )

    # (b) Compile once per segment, then personalise per subscriber.
    compiled: list[CompiledDigest] = []
    produced: list[int] = []

    def compile_all() -> None:
        compiled.extend(renderer.compile_digest(s) for s in segments)

    def personalise_all() -> None:
        for number, recipient in enumerate(recipients):
            message = compiled[number % len(compiled)].personalise(recipient)
            produced.append(len(message.html) + len(message.text))

    compile_time, _ = _timed(compile_all)
    personalise_time, personalise_wall = _timed(personalise_all)
    rate = args.subscribers / personalise_time
    overall = args.subscribers / (compile_time + personalise_time)
    print(
        f"(b) compile once + personalise: compile {len(segments)} segments in "
        f"{compile_time:.2f} s ({compile_time / len(segments) * 1000:.0f} ms each); "
        f"personalise {args.subscribers} in {personalise_time:.3f} s = {rate:,.0f} messages/s "
        f"(wall {args.subscribers / personalise_wall:,.0f}/s); overall incl. compile "
        f"{overall:,.0f} messages/s ({compile_time + personalise_time:.2f} s)"
    )
    speedup = full_total / (compile_time + personalise_time)
    largest = max(c.html_bytes for c in compiled)
    print(
        f"speed-up (b) over (a), compile included: {speedup:,.0f}x; "
        f"largest HTML {largest / 1000:.1f} KB (budget {settings.render.max_html_bytes / 1000:.0f})"
    )
    verdict = rate >= 20_000 and speedup >= 20
    print(
        "target (b) >= 20,000 messages/s and >= 20x faster than (a):",
        "met" if verdict else "MISSED",
    )
    assert all(sizes) and all(produced)


if __name__ == "__main__":
    main()
