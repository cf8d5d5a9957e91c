"""Group commit (digest/inbound/batches.py): what waits goes in one call, replies follow it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from digest.inbound.batches import STORED, UNAVAILABLE, BatchWriter
from digest.inbound.verdicts import Received, Source

WAIT = 20.0


class Down(Exception):
    """Stands for InboundUnavailable."""


class _Held:
    """Holds its first batch until `release`; raises Down while `down`; a message saying
    "poison" fails any batch holding it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.down = False
        self.batches: list[list[bytes]] = []

    def __call__(self, batch: Sequence[Received]) -> object:
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(WAIT)
        if self.down:
            raise Down("database is locked")
        if any(b"poison" in received.raw for received in batch):
            raise ValueError("a reader bug")
        self.batches.append([received.raw for received in batch])
        return None


def _mail(tag: str) -> Received:
    return Received(tag.encode(), Source.SMTP)


def test_messages_waiting_behind_a_transaction_go_in_the_next_one_up_to_the_cap() -> None:
    held = _Held()
    writer = BatchWriter(held, unavailable=(Down,), max_batch=4)
    writer.start()
    first = writer.submit(_mail("first"))
    assert held.started.wait(WAIT)
    waiting = [writer.submit(_mail(f"m{n}")) for n in range(6)]
    held.release.set()
    assert [reply.result(WAIT) for reply in [first, *waiting]] == [STORED] * 7
    writer.close()
    assert held.batches == [[b"first"], [b"m0", b"m1", b"m2", b"m3"], [b"m4", b"m5"]]
    assert writer.batches == 3


def test_an_unavailable_database_answers_the_whole_batch_451_and_a_bug_only_its_message() -> None:
    held = _Held()
    held.release.set()
    writer = BatchWriter(held, unavailable=(Down,))
    writer.start()
    held.down = True
    assert writer.submit(_mail("a")).result(WAIT) == UNAVAILABLE
    held.down = False
    assert writer.submit(_mail("a")).result(WAIT) == STORED
    held.started.clear()
    held.release.clear()
    blocker = writer.submit(_mail("blocker"))
    assert held.started.wait(WAIT)
    mixed = [writer.submit(_mail(tag)) for tag in ("b", "poison", "c")]
    held.release.set()
    assert blocker.result(WAIT) == STORED
    assert [reply.result(WAIT) for reply in mixed] == [STORED, UNAVAILABLE, STORED]
    writer.close()
    assert [b"poison"] not in held.batches


def test_a_reply_cancelled_before_its_turn_is_not_processed_and_close_drains_the_rest() -> None:
    held = _Held()
    writer = BatchWriter(held, unavailable=(Down,))
    writer.start()
    first = writer.submit(_mail("first"))
    assert held.started.wait(WAIT)
    gone = writer.submit(_mail("gone"))  # the client hung up before its 250
    kept = writer.submit(_mail("kept"))
    assert gone.cancel()
    held.release.set()
    writer.close()
    assert first.result(0) == STORED and kept.result(0) == STORED
    assert held.batches == [[b"first"], [b"kept"]]


def test_replies_to_a_coroutine_come_on_its_loop_and_a_cancelled_one_is_not_processed() -> None:
    held = _Held()
    writer = BatchWriter(held, unavailable=(Down,))
    writer.start()

    async def main() -> list[str]:
        first = writer.submit_here(_mail("first"))
        assert await asyncio.to_thread(held.started.wait, WAIT)
        gone = writer.submit_here(_mail("gone"))  # the client hung up before its 250
        kept = [writer.submit_here(_mail(f"k{n}")) for n in range(3)]
        gone.cancel()
        held.release.set()
        return list(await asyncio.wait_for(asyncio.gather(first, *kept), WAIT))

    assert asyncio.run(main()) == [STORED] * 4
    writer.close()
    assert held.batches == [[b"first"], [b"k0", b"k1", b"k2"]]


def test_replies_for_a_closed_loop_are_dropped_without_stopping_the_writer() -> None:
    held = _Held()
    writer = BatchWriter(held, unavailable=(Down,))
    writer.start()

    async def leave() -> None:
        writer.submit_here(_mail("orphan"))  # its loop closes before the reply is set

    asyncio.run(leave())
    assert held.started.wait(WAIT)
    held.release.set()
    assert writer.submit(_mail("later")).result(WAIT) == STORED
    writer.close()
    assert held.batches == [[b"orphan"], [b"later"]]


def test_a_group_stays_open_for_what_arrives_within_its_linger_and_closes_once_full() -> None:
    held = _Held()
    held.release.set()
    writer = BatchWriter(held, unavailable=(Down,), max_batch=3, linger=WAIT * 10)
    writer.start()
    first = writer.submit(_mail("first"))
    threading.Event().wait(0.2)  # the writer has taken "first" and waits for more
    rest = [writer.submit(_mail(tag)) for tag in ("second", "third", "fourth")]
    assert first.result(WAIT) == STORED  # the group closed when full, not after the linger
    assert held.batches[0] == [b"first", b"second", b"third"]
    writer.close()  # "fourth" is written at once: closing ends the wait
    assert [reply.result(WAIT) for reply in rest] == [STORED] * 3
    assert held.batches == [[b"first", b"second", b"third"], [b"fourth"]]
