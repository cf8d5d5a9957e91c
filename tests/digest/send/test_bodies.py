"""8bit bodies (digest/send/bodies.py): HTML lines broken only where white space is free,
values checked once, the SMTP form and DKIM's relaxed form made from per-segment pieces;
and a real send to a server with and without 8BITMIME, parsed back by the stdlib."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery
from digest.render.renderer import Recipient
from digest.render.slots import SlotMarkers, SlotTemplate
from digest.send.bodies import LINE_LIMIT, BodyParts, EightBitBody, wrap_html
from digest.send.dispatcher import Dispatcher, DispatchOptions, RunHooks
from digest.send.dkim import canonical_body
from digest.send.smtp import SmtpSender
from digest.tracking.tokens import tokens_for
from subscribers.models import Subscriber
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
PARTS = BodyParts(
    b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
    b'\r\n--b\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit'
    b"\r\n\r\n",
    b"\r\n--b--\r\n",
)


def _template(text: str, slots: dict[str, str]) -> SlotTemplate:
    """`text` with `{name}` holes, as the renderer splits it."""
    markers = SlotMarkers()
    return markers.split(text.format(**{name: markers(name) for name in slots}))


def _stuffed(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\.", b"..", data)


def test_long_html_lines_break_only_before_attributes() -> None:
    tag = '<td style="padding:0 10px" class="c">خبر عاجل عن السوق</td>'
    line = (tag * 200).encode()
    wrapped = wrap_html(b"<p>x</p>\r\n" + line + b"\r\n")
    assert wrapped is not None
    lines = wrapped.split(b"\r\n")
    assert max(map(len, lines)) <= 800 and len(lines) > 10
    # Only spaces became line ends, and each one stood before an attribute (name=").
    assert wrapped.replace(b"\r\n", b" ")[9:] == line.replace(b"\r\n", b" ") + b" "
    assert all(re.match(rb'(style|class)="', rest) for rest in lines[2:-1])
    short = b"<p>short</p>\r\n"
    assert wrap_html(short) is short


def test_a_long_line_without_attributes_cannot_be_broken() -> None:
    words = ("نص " * 500).encode()  # spaces, but none before an attribute: text is not cut
    assert wrap_html(words) is None


def test_filled_body_is_the_join_and_its_wire_and_canonical_forms_are_exact() -> None:
    text = _template(
        "{greeting}\n.{name} سطر يبدأ بنقطة\nرابط: https://x.org/u/{unsub}\n",
        {"greeting": "", "name": "", "unsub": ""},
    )
    html = _template(
        '<style>\n.mj-column {{ width:100%  }}  \n</style>\n<p  class="g">{greeting}</p>'
        '<a href="https://x.org/u/{unsub}">x</a>\n',
        {"greeting": "", "unsub": ""},
    )
    body = EightBitBody.prepare(PARTS, text, html)
    assert body is not None
    values = {"greeting": "مرحبًا يا قارئ", "name": ".نقطة", "unsub": "tok-123"}
    filled = body.fill(values, values)
    assert filled is not None
    expected_text = text.fill(values).replace("\n", "\r\n").encode()
    expected_html = html.fill(values).replace("\n", "\r\n").encode()
    assert filled.data == PARTS.head + expected_text + PARTS.between + expected_html + PARTS.end
    # Dots at a line start, in the template (CSS) and in a value, are doubled on the wire.
    assert filled.wire == _stuffed(filled.data) != filled.data
    assert filled.canonical == canonical_body(filled.data)


def test_values_that_cannot_go_in_8bit_or_whose_canonical_form_is_unknown() -> None:
    text = _template("{a}\n{b}\n", {"a": "", "b": ""})
    body = EightBitBody.prepare(PARTS, text, _template("<p>{a}</p>\n", {"a": ""}))
    assert body is not None
    for bad in ("", "سطر\r\nآخر", "x\ny", "x" * (LINE_LIMIT + 1)):
        assert body.fill({"a": bad, "b": "ok"}, {"a": "ok"}) is None, bad
    # White space runs or ends: sent in 8bit, its canonical form left to canonical_body.
    spaced = body.fill({"a": " two  spaces ", "b": "ok"}, {"a": "ok"})
    assert spaced is not None and spaced.canonical is None
    assert canonical_body(spaced.data).count(b"two spaces") == 1
    # Nothing to stuff: the wire form is the data itself.
    plain = body.fill({"a": "a", "b": "b"}, {"a": "c"})
    assert plain is not None and plain.wire is plain.data


def test_a_line_whose_values_could_pass_998_octets_bounds_each_value() -> None:
    fixed = "x" * 900
    body = EightBitBody.prepare(PARTS, _template(fixed + "{a}{a}\n", {"a": ""}), _template("", {}))
    assert body is not None
    assert body.fill({"a": "y" * 49}, {}) is not None
    assert body.fill({"a": "y" * 50}, {}) is None  # 900 + 2 x 50 > 998


def _send(
    engine: Engine, settings: Settings, world: World, sink: SmtpSink
) -> tuple[Dispatcher, dict[str, EmailMessage]]:
    smtp = settings.smtp.model_copy(update={"port": sink.port, "connections": 2})
    options = DispatchOptions.from_settings(settings.model_copy(update={"smtp": smtp}))

    async def go() -> Dispatcher:
        async with SmtpSender(smtp) as sender:
            assert sender.eight_bit == sink.eight_bit
            hooks = RunHooks(clock=lambda: NOW)
            dispatcher = Dispatcher(engine, world.daily, sender, options, hooks)
            await dispatcher.run()
            return dispatcher

    dispatcher = asyncio.run(go())
    parsed = {}
    for received in sink.messages:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        parsed[received.rcpt_tos[0]] = message
    return dispatcher, parsed


@pytest.mark.parametrize("eight_bit", [True, False])
def test_a_real_send_parses_back_to_the_rendered_parts_with_and_without_8bitmime(
    engine: Engine, session: Session, settings: Settings, eight_bit: bool
) -> None:
    world = make_world(session)
    names = {"salma@example.org": "سلمى  الحربي", "omar@example.org": ""}
    for address, name in names.items():
        add_reader(session, world, address, ["politics"], name=name)
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    with SmtpSink(eight_bit=eight_bit) as sink:
        dispatcher, messages = _send(engine, settings, world, sink)
        raw = [received.data for received in sink.messages]
    assert sorted(messages) == sorted(names)
    encoding = (
        b"Content-Transfer-Encoding: 8bit" if eight_bit else b"Content-Transfer-Encoding: base64"
    )
    assert all(data.count(encoding) == 2 for data in raw)
    assert all(len(line) <= LINE_LIMIT for data in raw for line in data.split(b"\r\n"))
    (compiled,) = dispatcher._compiled.values()
    for delivery in session.exec(select(Delivery)):
        subscriber = session.get(Subscriber, delivery.subscriber_id)
        assert subscriber is not None
        address = subscriber.email
        tokens = tokens_for(
            dispatcher.signer,
            subscriber_id=delivery.subscriber_id,
            list_id=delivery.list_id,
            delivery_id=delivery.id or 0,
        )
        values = compiled.digest.slot_values(Recipient.with_tokens(names[address], tokens))
        html = messages[address].get_body(("html",))
        text = messages[address].get_body(("plain",))
        assert html is not None and text is not None
        # The parser gives CRLF line ends for 8bit and base64 parts alike.
        got_text = text.get_content().replace("\r\n", "\n")
        assert got_text == compiled.digest.text_template.fill(values.text)
        # 8bit HTML lines were broken at spaces between attributes: the same page.
        got_html = html.get_content().replace("\r\n", " ").replace("\n", " ")
        assert got_html == compiled.digest.html_template.fill(values.html).replace("\n", " ")
