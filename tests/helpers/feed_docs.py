"""Small RSS 2.0, Atom and JSON Feed documents for tests, built from plain item dicts."""

from __future__ import annotations

import json
from html import escape
from typing import Any

Item = dict[str, Any]


def rss(
    items: list[Item],
    *,
    title: str = "أخبار الاختبار",
    encoding: str = "utf-8",
    declare: bool = True,
    language: str | None = "ar",
) -> bytes:
    """An RSS 2.0 document; item keys: title, link, guid, date, description, content,
    categories, image (media:content), enclosure, author."""
    parts = []
    for item in items:
        fields = []
        if "title" in item:
            fields.append(f"<title>{escape(item['title'])}</title>")
        if "link" in item:
            fields.append(f"<link>{escape(item['link'])}</link>")
        if "guid" in item:
            fields.append(f'<guid isPermaLink="false">{escape(item["guid"])}</guid>')
        if "date" in item:
            fields.append(f"<pubDate>{item['date']}</pubDate>")
        for category in item.get("categories", []):
            fields.append(f"<category>{escape(category)}</category>")
        if "description" in item:
            fields.append(f"<description>{escape(item['description'])}</description>")
        if "content" in item:
            fields.append(f"<content:encoded>{escape(item['content'])}</content:encoded>")
        if "image" in item:
            fields.append(f'<media:content url="{escape(item["image"])}" medium="image"/>')
        if "enclosure" in item:
            fields.append(
                f'<enclosure url="{escape(item["enclosure"])}" type="image/jpeg" length="1"/>'
            )
        if "author" in item:
            fields.append(f"<dc:creator>{escape(item['author'])}</dc:creator>")
        parts.append("<item>" + "".join(fields) + "</item>")
    prolog = f'<?xml version="1.0" encoding="{encoding}"?>' if declare else ""
    lang = f"<language>{language}</language>" if language else ""
    text = (
        f'{prolog}<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example.org/</link>{lang}"
        + "".join(parts)
        + "</channel></rss>"
    )
    return text.encode(encoding)


def atom(items: list[Item], *, title: str = "أخبار أتوم") -> bytes:
    """An Atom document; item keys: title, link, id, updated, summary, content, categories."""
    entries = []
    for item in items:
        fields = [f"<title>{escape(item['title'])}</title>"] if "title" in item else []
        if "link" in item:
            fields.append(f'<link rel="alternate" href="{escape(item["link"])}"/>')
        if "id" in item:
            fields.append(f"<id>{escape(item['id'])}</id>")
        if "updated" in item:
            fields.append(f"<updated>{item['updated']}</updated>")
        if "summary" in item:
            fields.append(f'<summary type="html">{escape(item["summary"])}</summary>')
        if "content" in item:
            fields.append(f'<content type="html">{escape(item["content"])}</content>')
        for category in item.get("categories", []):
            fields.append(f'<category term="{escape(category)}"/>')
        entries.append("<entry>" + "".join(fields) + "</entry>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:lang="ar"><title>{escape(title)}</title><id>urn:test:atom</id>'
        '<updated>2026-11-28T06:00:00Z</updated><link href="https://news.example.org/"/>'
        + "".join(entries)
        + "</feed>"
    ).encode()


def json_feed(items: list[Item], *, title: str = "أخبار JSON") -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": "https://news.example.org/",
            "language": "ar",
            "items": items,
        },
        ensure_ascii=False,
    ).encode()
