"""Topic tagging: feed defaults, feed categories and keywords, matched on normalised Arabic.

Keyword matching is one pass over the words of a text: each word's forms (with and without
its clitic prefixes) are looked up in a dict of keyword first-words (once per distinct word),
so the cost does not grow with the number of keywords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from digest.db.models import TagReason, Topic
from digest.text.arabic import phrase_key, tokens, word_forms

# Categories are often paths: "News/Economy", "أخبار > اقتصاد", "Sport | Football".
_MAX_REMEMBERED_WORDS = 500_000
_CATEGORY_SEPARATORS = re.compile(r"\s*[/>|»›:]\s*")


@dataclass(frozen=True)
class Tag:
    """A topic given to an article and why: the reason and which feed/category/keyword."""

    topic_id: int
    reason: TagReason
    detail: str


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    topic_id: int
    keyword: str


class TopicIndex:
    """Every topic's names and keywords, compiled once per ingest run for fast lookups."""

    def __init__(self, topics: Iterable[Topic]) -> None:
        self._by_category: dict[tuple[str, ...], list[int]] = {}
        self._by_first_word: dict[str, list[_Phrase]] = {}
        self._category_cache: dict[str, list[int]] = {}
        # word -> keywords it may start (most words: none); filled as words are met.
        self._starting: dict[str, tuple[_Phrase, ...]] = {}
        self.topic_count = 0
        for topic in topics:
            if topic.id is None:
                raise ValueError(f"topic {topic.slug!r} has no id: flush it first")
            self.topic_count += 1
            names = [topic.slug, topic.name, topic.name_en or "", *topic.aliases]
            for name in names:
                key = phrase_key(name)
                if key and topic.id not in self._by_category.get(key, []):
                    self._by_category.setdefault(key, []).append(topic.id)
            for keyword in topic.keywords:
                words = phrase_key(keyword)
                if words:
                    phrase = _Phrase(words, topic.id, keyword)
                    self._by_first_word.setdefault(words[0], []).append(phrase)

    def category_matches(self, categories: Iterable[str]) -> dict[int, str]:
        """topic id -> the category (as the feed wrote it) that names the topic."""
        found: dict[int, str] = {}
        for category in categories:
            topic_ids = self._category_cache.get(category)
            if topic_ids is None:  # feeds repeat a few categories: work each out once
                parts = [category, *_CATEGORY_SEPARATORS.split(category)]
                keys = [phrase_key(part) for part in parts]
                topic_ids = [t for key in keys for t in self._by_category.get(key, ())]
                self._category_cache[category] = topic_ids
            for topic_id in topic_ids:
                found.setdefault(topic_id, category)
        return found

    def keyword_matches(self, *texts: str) -> dict[int, list[str]]:
        """topic id -> the keywords (as configured) found as whole words in `texts`."""
        found: dict[int, list[str]] = {}
        starting = self._starting
        for text in texts:
            words = tokens(text)
            for position, word in enumerate(words):
                phrases = starting.get(word)
                if phrases is None:
                    if len(starting) >= _MAX_REMEMBERED_WORDS:
                        starting.clear()
                    phrases = starting[word] = self._phrases_starting(word)
                for phrase in phrases:
                    if len(phrase.words) == 1 or _continues(phrase.words, words, position):
                        keywords = found.setdefault(phrase.topic_id, [])
                        if phrase.keyword not in keywords:
                            keywords.append(phrase.keyword)
        return found

    def _phrases_starting(self, word: str) -> tuple[_Phrase, ...]:
        """The keywords whose first word is `word` or `word` without its prefixes."""
        index = self._by_first_word
        return tuple(p for form in word_forms(word) for p in index.get(form, ()))

    def tags(
        self,
        *,
        feed_topics: Mapping[int, str],
        categories: Sequence[str],
        title: str,
        summary: str,
    ) -> dict[int, Tag]:
        """The topics of one article, each with its strongest reason: feed > category > keyword.

        `feed_topics` maps the default topic ids of the article's feed to the feed's URL.
        """
        result = {tid: Tag(tid, TagReason.FEED, url) for tid, url in feed_topics.items()}
        for tid, category in self.category_matches(categories).items():
            result.setdefault(tid, Tag(tid, TagReason.CATEGORY, category))
        for tid, keywords in self.keyword_matches(title, summary).items():
            result.setdefault(tid, Tag(tid, TagReason.KEYWORD, ", ".join(keywords)))
        return result


def _continues(phrase: tuple[str, ...], words: Sequence[str], start: int) -> bool:
    """Whether the words after the first of a multi-word keyword follow at `start`."""
    if start + len(phrase) > len(words):
        return False
    return all(phrase[k] in word_forms(words[start + k]) for k in range(1, len(phrase)))
