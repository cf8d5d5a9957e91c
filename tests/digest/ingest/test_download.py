"""Fetching from a real local server that drips, compresses, bombs or stacks encodings."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import httpx
import pytest

from digest.config import IngestSettings
from digest.ingest import feeds
from digest.ingest.documents import FeedError
from digest.ingest.download import BoundedDecoder, decoder_for
from tests.helpers.feed_docs import rss
from tests.helpers.feed_server import Route, serving

DOC = rss([{"title": "خبر", "link": "https://news.example.org/1", "guid": "1"}])
SMALL_CAP = 300_000  # a cap of a few hundred KB: a small bomb is enough to pass it


def _bomb(decoded: int, wbits: int = 31) -> bytes:
    """`decoded` zero bytes, compressed (gzip by default) in about a thousandth of that."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b"\0" * 1_000_000
    parts = [packer.compress(block) for _ in range(decoded // len(block))]
    return b"".join(parts) + packer.flush()


def _fetch(route: Route, settings: IngestSettings) -> bytes | None:
    with serving() as server, httpx.Client() as client:
        server.routes["/rss"] = route
        return feeds.fetch(server.url("/rss"), settings=settings, client=client).content


def test_headers_sent_a_byte_at_a_time_are_cut_at_the_deadline() -> None:
    # Each byte comes well within the per-read timeout: only a total deadline stops it
    # (before, the whole head was waited for, then the deadline was found passed).
    with serving() as server, httpx.Client() as client:
        server.routes["/rss"] = Route(DOC, head_drip_seconds=20.0)
        with pytest.raises(FeedError, match=r"timed out after 0.5 s \(see ingest.timeout\)"):
            feeds.fetch(server.url("/rss"), settings=IngestSettings(timeout=0.5), client=client)
        assert server.completed == []  # cut while the server was still sending its head


def test_a_body_stalled_mid_way_is_cut_at_the_deadline() -> None:
    slow = Route(DOC, drip_seconds=60.0)
    with pytest.raises(FeedError, match=r"timed out after 0\.5 s"):
        _fetch(slow, IngestSettings(timeout=0.5))


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
def test_compressed_documents_are_read(encoding: str, wbits: int) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    body = packer.compress(DOC) + packer.flush()
    route = Route(body, headers={"Content-Encoding": encoding})
    assert _fetch(route, IngestSettings()) == DOC


@pytest.mark.parametrize("wbits", [31, 15])
def test_a_compression_bomb_is_stopped_at_the_cap_without_inflating_it(wbits: int) -> None:
    body = _bomb(100_000_000, wbits)  # 100 MB of zeros in ~100 KB
    assert len(body) < SMALL_CAP
    route = Route(body, headers={"Content-Encoding": "gzip" if wbits == 31 else "deflate"})
    tracemalloc.start()
    try:
        with pytest.raises(FeedError, match=f"larger than {SMALL_CAP} bytes \\(decompressed"):
            _fetch(route, IngestSettings(max_bytes=SMALL_CAP))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Decoding a whole network chunk at once held up to ~64 MB: now at most the cap, twice.
    assert peak < 4 * SMALL_CAP + len(body)


@pytest.mark.parametrize("value", ["gzip, gzip", "deflate, gzip", "gzip,identity,gzip"])
def test_stacked_encodings_are_refused(value: str) -> None:
    body = gzip.compress(gzip.compress(DOC))
    with pytest.raises(FeedError, match=r"stacked content encodings \(.+\) are refused"):
        _fetch(Route(body, headers={"Content-Encoding": value}), IngestSettings())


def test_an_encoding_we_did_not_ask_for_is_refused() -> None:
    with pytest.raises(FeedError, match="content encoding 'br' is not supported"):
        _fetch(Route(b"\x1b\x00", headers={"Content-Encoding": "br"}), IngestSettings())


def test_corrupt_compressed_data_is_a_feed_error() -> None:
    with pytest.raises(FeedError, match="the gzip response does not decompress"):
        _fetch(Route(b"not gzip at all", headers={"Content-Encoding": "gzip"}), IngestSettings())


def test_identity_and_no_encoding_mean_the_bytes_as_sent() -> None:
    assert decoder_for([]) is None
    assert decoder_for(["identity"]) is None
    assert isinstance(decoder_for(["x-gzip"]), BoundedDecoder)
    assert _fetch(Route(DOC, headers={"Content-Encoding": "identity"}), IngestSettings()) == DOC


def test_the_decoder_never_gives_more_than_asked_plus_one() -> None:
    decoder = BoundedDecoder("gzip")
    body = _bomb(10_000_000)
    assert len(decoder.decode(body, 1000)) == 1001
