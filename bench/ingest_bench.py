"""Ingest benchmark: a generated 5,000-item feed tagged against 50 topics x 20 keywords.

Prints, in one run: our tagger next to a naive baseline (every keyword's regex over every
text), tagging cost at 50x20 and 50x200 keywords (ours should not grow), and end-to-end
ingest items/s (read file, parse with feedparser, sanitise, tag, store in SQLite) through
`digest.ingest.pipeline.ingest`, the function `digest ingest` calls: with its default parse workers
(one per CPU, see digest/ingest/parallel.py) next to a single process (workers=0), each into a fresh
database, with a check that both stored the same articles and tags.

    .venv/bin/python bench/ingest_bench.py [--items 5000] [--topics 50] [--keywords 20]

The machine is shared: best of --repeat runs; the CPU seconds (this process and its workers)
show how much of a slow run was waiting for a core.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from html import escape
from math import inf
from pathlib import Path

import feedparser
from sqlalchemy import Engine, text

from digest.catalog import topics
from digest.config import IngestSettings
from digest.db.engine import make_engine, session_scope, upgrade
from digest.db.models import Topic
from digest.ingest import feeds
from digest.ingest.documents import parse_document
from digest.ingest.matcher import TopicIndex
from digest.ingest.parallel import ParseWorkers, default_workers, parse_parts
from digest.ingest.pipeline import ingest
from digest.text.arabic import normalize, phrase_key, word_forms

LETTERS = "ابتثجحخدذرسشصضطظعغفقكلمنهويةأإى"
PREFIXES = ("", "", "", "ال", "وال", "بال", "لل", "و", "ب")
T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(4, 7)))


def make_topics(rng: random.Random, count: int, per_topic: int) -> list[Topic]:
    """Topics with distinct one- and two-word keywords (one in five has two words)."""
    made: list[Topic] = []
    seen: set[str] = set()
    for n in range(count):
        keywords: list[str] = []
        while len(keywords) < per_topic:
            words = [_word(rng) for _ in range(2 if len(keywords) % 5 == 4 else 1)]
            keyword = " ".join(words)
            if words[0] not in seen:
                seen.add(words[0])
                keywords.append(keyword)
        made.append(Topic(id=n + 1, slug=f"topic-{n}", name=f"موضوع {n}", keywords=keywords))
    return made


def widen(base: Sequence[Topic], rng: random.Random, extra: int) -> list[Topic]:
    """The same topics with `extra` more keywords each (found in no text): same matches."""
    return [
        Topic(
            id=t.id,
            slug=t.slug,
            name=t.name,
            keywords=[*t.keywords, *(f"{_word(rng)}{_word(rng)}" for _ in range(extra))],
        )
        for t in base
    ]


def make_texts(rng: random.Random, count: int, keywords: Sequence[str]) -> list[tuple[str, str]]:
    """(title, summary) pairs: filler words with 0-3 keywords, some with clitic prefixes.

    Filler comes from a 30,000-word vocabulary with Zipf frequencies, like news text
    (each word's prefix forms are computed once and cached, as in a real run).
    """
    vocabulary = [rng.choice(PREFIXES) + _word(rng) for _ in range(30_000)]
    weights = [1 / rank for rank in range(1, len(vocabulary) + 1)]
    texts = []
    for _ in range(count):
        words = rng.choices(vocabulary, weights, k=rng.randint(30, 45))
        for _ in range(rng.randint(0, 3)):
            first, *rest = rng.choice(keywords).split()
            words.insert(rng.randrange(len(words)), " ".join([rng.choice(PREFIXES) + first, *rest]))
        texts.append((" ".join(words[:10]), " ".join(words[10:])))
    return texts


def make_feed(texts: Sequence[tuple[str, str]]) -> bytes:
    items = []
    for n, (title, summary) in enumerate(texts):
        when = format_datetime(T0 - timedelta(minutes=n))
        items.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://news.example.org/bench/{n}</link>"
            f'<guid isPermaLink="false">bench-{n}</guid><pubDate>{when}</pubDate>'
            f"<category>تصنيف {n % 7}</category>"
            f"<description>{escape(f'<p>{summary}</p>')}</description>"
            f'<media:content url="https://news.example.org/img/{n}.jpg" medium="image"/></item>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        "<title>Bench</title><link>https://news.example.org/</link><language>ar</language>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class NaiveTagger:
    """The baseline: one regex per keyword, each searched in every text."""

    def __init__(self, all_topics: Sequence[Topic]) -> None:
        self.patterns: list[tuple[int, re.Pattern[str]]] = []
        for topic in all_topics:
            assert topic.id is not None
            for keyword in topic.keywords:
                words = [re.escape(w) for w in phrase_key(keyword)]
                body = r"\s+".join(words)
                pattern = rf"(?<!\w)(?:[وف]?[بكل]?(?:ال|ل)?){body}(?!\w)"
                self.patterns.append((topic.id, re.compile(pattern)))

    def topics(self, title: str, summary: str) -> set[int]:
        text = f"{normalize(title)} {normalize(summary)}"
        return {topic_id for topic_id, pattern in self.patterns if pattern.search(text)}


def _timed(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def bench_tagging(
    all_topics: list[Topic], texts: list[tuple[str, str]], naive_sample: int
) -> dict[str, float]:
    """Seconds per item, ours (all texts) and naive (the first `naive_sample`: it is slow)."""
    index = TopicIndex(all_topics)
    word_forms.cache_clear()
    ours_s, ours = _timed(lambda: [set(index.keyword_matches(t, s)) for t, s in texts])
    naive = NaiveTagger(all_topics)
    sample = texts[:naive_sample]
    naive_s, theirs = _timed(lambda: [naive.topics(t, s) for t, s in sample])
    assert isinstance(ours, list) and isinstance(theirs, list)
    agree = sum(1 for a, b in zip(ours, theirs, strict=False) if a == b) / len(sample)
    tagged = sum(1 for a in ours if a) / len(texts)
    return {
        "ours": ours_s / len(texts),
        "naive": naive_s / len(sample),
        "agree": agree,
        "tagged": tagged,
    }


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _fresh_database(all_topics: Sequence[Topic], path: Path, workdir: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{workdir / name}")
    upgrade(engine)
    with session_scope(engine) as session:
        for topic in all_topics:
            topics.add_topic(session, slug=topic.slug, name=topic.name, keywords=topic.keywords)
        feeds.add_feed(session, url=str(path))
    return engine


def _stored(engine: Engine) -> tuple[int, int, str]:
    """(articles, tags, a hash of every stored article and tag row)."""
    digest = hashlib.sha256()
    with engine.connect() as connection:
        articles = connection.execute(text("SELECT * FROM article ORDER BY id")).all()
        tags = connection.execute(
            text("SELECT * FROM article_topic ORDER BY article_id, topic_id")
        ).all()
    for row in (*articles, *tags):
        digest.update(repr(tuple(row)).encode())
    return len(articles), len(tags), digest.hexdigest()


def bench_ingest(
    all_topics: list[Topic], feed: bytes, workdir: Path, repeat: int, workers: int
) -> dict[str, float | str]:
    """Best-of-`repeat` seconds of a whole ingest run (`digest.ingest.pipeline.ingest`, as the CLI
    calls it) with `workers` parse workers and with none, each into a fresh database; and of
    its parts: feedparser alone, parse + sanitise (in parallel and not)."""
    best: dict[str, float | str] = {}

    def keep(name: str, seconds: float, cpu: float | None = None) -> None:
        if seconds < float(best.get(name, inf)):
            best[name] = seconds
            if cpu is not None:
                best[f"{name} cpu"] = cpu

    path = workdir / "feed.xml"
    path.write_bytes(feed)
    settings = IngestSettings()
    for run in range(repeat):
        seconds, _ = _timed(
            lambda: feedparser.parse(
                io.BytesIO(feed), resolve_relative_uris=False, sanitize_html=False
            )
        )
        keep("feedparser", seconds)
        seconds, _ = _timed(
            lambda: parse_document(feed, content_type=None, location=path.as_uri(), now=T0)
        )
        keep("parse single", seconds)
        with ParseWorkers(workers) as pool:
            seconds, _ = _timed(
                lambda: list(
                    parse_parts(
                        feed, content_type=None, location=path.as_uri(), now=T0, workers=pool
                    )
                )
            )
        keep("parse parallel", seconds)
        for mode, count in (("parallel", workers), ("single", 0)):
            engine = _fresh_database(all_topics, path, workdir, f"bench-{mode}-{run}.sqlite3")
            word_forms.cache_clear()
            cpu = _cpu()
            seconds, report = _timed(
                partial(ingest, engine, settings, clock=lambda: T0, workers=count)
            )
            keep(f"total {mode}", seconds, _cpu() - cpu)
            articles, tags, stored = _stored(engine)
            best[f"articles {mode}"], best[f"tags {mode}"] = articles, tags
            best[f"stored {mode}"] = stored
            best[f"failed {mode}"] = len(getattr(report, "failed", []))
            engine.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--keywords", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive", type=int, default=300, help="items the naive tagger tags")
    parser.add_argument("--repeat", type=int, default=5, help="ingest runs (best is shown)")
    parser.add_argument(
        "--workers", type=int, default=None, help="parse workers (default: one per CPU)"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    small = make_topics(rng, args.topics, args.keywords)
    large = widen(small, rng, args.keywords * 9)
    keywords = [k for t in small for k in t.keywords]
    texts = make_texts(rng, args.items, keywords)
    n = len(texts)

    print(
        f"{n} items; topics x keywords: {args.topics}x{args.keywords} and "
        f"{args.topics}x{args.keywords * 10}"
    )
    print(f"\nTagging (title + summary, ~40 words per item; naive timed on {args.naive} items)")
    print(
        f"{'keywords':>10} {'ours µs/item':>13} {'ours items/s':>13} {'naive µs/item':>14} "
        f"{'naive items/s':>14} {'speed-up':>9} {'same topics':>12} {'tagged':>7}"
    )
    for label, chosen in (
        (f"{args.topics}x{args.keywords}", small),
        (f"{args.topics}x{args.keywords * 10}", large),
    ):
        r = bench_tagging(chosen, texts, args.naive)
        print(
            f"{label:>10} {r['ours'] * 1e6:>13,.0f} {1 / r['ours']:>13,.0f} "
            f"{r['naive'] * 1e6:>14,.0f} {1 / r['naive']:>14,.0f} "
            f"{r['naive'] / r['ours']:>8.0f}x {r['agree']:>11.1%} {r['tagged']:>7.0%}"
        )

    workers = default_workers() if args.workers is None else args.workers
    print(
        f"\nIngest end-to-end, best of {args.repeat} (file -> feedparser -> nh3 -> tag -> SQLite),"
        f" digest.ingest.pipeline.ingest as `digest ingest` runs it; {workers} parse workers"
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_ingest(small, make_feed(texts), Path(tmp), args.repeat, workers)
    same = result["stored parallel"] == result["stored single"]
    for mode in ("parallel", "single"):
        print(
            f"  {mode}: {result[f'articles {mode}']} articles, {result[f'tags {mode}']} tags, "
            f"failed feeds: {result[f'failed {mode}']}"
        )
    print(f"  same articles and tags stored both ways: {'yes' if same else 'NO'}")

    def cell(name: str) -> str:
        if name not in result:
            return f"{'-':>26}"
        seconds = float(result[name])
        return f"{n / seconds:>9,.0f} items/s {seconds:6.2f} s"

    print(f"  {'':<30} {'parallel':>26}   {'single process':>26}")
    rows = [
        ("end-to-end ingest", "total parallel", "total single"),
        ("  parse + sanitise + clean", "parse parallel", "parse single"),
        ("  feedparser.parse alone", "", "feedparser"),
    ]
    for label, left, right in rows:
        print(f"  {label:<30} {cell(left)}   {cell(right)}")
    rest = float(result["total single"]) - float(result["feedparser"])
    tag_store = float(result["total single"]) - float(result["parse single"])
    print(f"  {'  all but feedparser':<30} {'-':>26}   {n / rest:>9,.0f} items/s {rest:6.2f} s")
    print(f"  {'  tag + store':<30} {'-':>26}   {n / tag_store:>9,.0f} items/s {tag_store:6.2f} s")
    print(
        f"  CPU seconds of the best end-to-end runs (with workers'): parallel "
        f"{float(result['total parallel cpu']):.2f}, single {float(result['total single cpu']):.2f}"
    )
    speed = n / float(result["total parallel"])
    print(f"  target 2,000 items/s end-to-end: {'met' if speed >= 2000 else 'NOT met'}")


if __name__ == "__main__":
    main()
