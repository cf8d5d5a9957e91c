"""CSV import: good rows upserted, bad rows rejected with line and reason, nothing half-written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from subscribers.imports import CsvError, ImportOptions, import_csv, write_rejects
from subscribers.models import MailingList, Subscriber, Subscription, SubscriptionTopic
from subscribers.people import Person, subscribe, suppress, unsubscribe

OPTIONS = ImportOptions(default_timezone="Asia/Riyadh")
HEADER = "email,name,topics,timezone,hour\n"


def _csv(tmp_path: Path, body: str, *, bom: bool = False, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (HEADER + body).encode())
    return path


def _count(session: Session, model: type) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model)).one()


def test_mixed_good_and_bad_rows(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    path = _csv(
        tmp_path,
        (
            "Reem@Example.ORG,ريم,politics|economy,Africa/Cairo,8\n"  # line 2 good
            "not-an-email,x,,,\n"  # 3 bad email
            "omar@example.org,عمر,سياسة،اقتصاد,,\n"  # 4 good, Arabic names, ،
            "sara@example.org,,nope,,\n"  # 5 unknown topic
            "huda@example.org,,cooking,,\n"  # 6 not offered
            "ali@example.org,,,Mars/Base,\n"  # 7 bad zone
            "nour@example.org,,,,24\n"  # 8 bad hour
            "Reem@EXAMPLE.org,dup,,,\n"  # 9 duplicate (domain case)
            "\n"  # blank line ignored
            "zaid@example.org,زيد,,,23\n"  # 11 good
        ),
        bom=True,
    )
    report = import_csv(engine, path, daily, topics, OPTIONS)
    assert (report.rows, report.created, report.updated, report.rejected) == (9, 3, 0, 6)
    assert [(r.line, r.reason.split(":")[0].split(" '")[0]) for r in report.rejects] == [
        (3, "invalid email"),
        (5, "unknown topic"),
        (6, "topic"),
        (7, "unknown timezone"),
        (8, "hour 24 must be between 0 and 23"),
        (9, "duplicate of line 2"),
    ]
    reem = session.exec(select(Subscriber).where(Subscriber.email == "Reem@example.org")).one()
    assert (reem.name, reem.timezone) == ("ريم", "Africa/Cairo")
    sub = session.exec(select(Subscription).where(Subscription.subscriber_id == reem.id)).one()
    assert (sub.status, sub.send_hour, sub.source) == ("active", 8, "import")
    assert sub.confirmed_at is not None
    chosen = session.exec(
        select(SubscriptionTopic.topic_id)
        .where(SubscriptionTopic.subscription_id == sub.id)
        .order_by(SubscriptionTopic.position)  # type: ignore[arg-type]
    ).all()
    assert chosen == [topics["politics"], topics["economy"]]
    assert _count(session, Subscriber) == 3

    rejects = tmp_path / "rejects.csv"
    write_rejects(rejects, report.rejects)
    rows = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert [r["line"] for r in rows] == ["3", "5", "6", "7", "8", "9"]
    assert rows[0]["email"] == "not-an-email" and rows[0]["name"] == "x"
    assert "Mars/Base" in rows[3]["reason"]


def test_reimport_changes_nothing(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    path = _csv(tmp_path, "a@example.org,أ,politics,,7\nb@example.org,ب,,Asia/Dubai,\n")
    first = import_csv(engine, path, daily, topics, OPTIONS)
    snapshot = _snapshot(session)
    second = import_csv(engine, path, daily, topics, OPTIONS)
    assert (first.created, second.created, second.updated) == (2, 0, 2)
    assert _snapshot(session) == snapshot


def _snapshot(session: Session) -> list[tuple[object, ...]]:
    session.expire_all()
    rows = session.exec(
        select(Subscriber, Subscription).where(Subscription.subscriber_id == Subscriber.id)
    ).all()
    topics = session.exec(select(SubscriptionTopic)).all()
    return sorted(
        (s.id, s.email, s.name, s.timezone, s.locale, u.id, u.status, u.send_hour, u.confirmed_at)
        for s, u in rows
    ) + sorted((t.subscription_id, t.topic_id, t.position) for t in topics)


def test_suppressed_and_withdrawn_are_not_resubscribed(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    suppress(session, "bounced@example.org", "hard_bounce")
    subscribe(session, Person("left@example.org", "Asia/Riyadh"), daily)
    unsubscribe(session, "left@example.org")
    session.commit()
    path = _csv(tmp_path, "bounced@example.org,,,,\nleft@example.org,,,,\nnew@example.org,,,,\n")
    report = import_csv(engine, path, daily, topics, OPTIONS)
    assert (report.created, report.suppressed, report.withdrawn, report.rejected) == (1, 1, 1, 0)
    session.expire_all()
    statuses = dict(
        session.exec(
            select(Subscriber.email, Subscription.status).where(
                Subscription.subscriber_id == Subscriber.id
            )
        ).all()
    )
    assert statuses == {"left@example.org": "unsubscribed", "new@example.org": "active"}


def test_dry_run_writes_nothing(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    path = _csv(tmp_path, "a@example.org,,,,\nbad,,,,\n")
    report = import_csv(engine, path, daily, topics, ImportOptions("Asia/Riyadh", dry_run=True))
    assert (report.created, report.rejected, report.dry_run) == (1, 1, True)
    assert _count(session, Subscriber) == 0


def test_not_utf8_is_refused_before_anything_is_written(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    path = tmp_path / "cp1256.csv"
    good = "".join(f"u{i}@example.org,,,,\n" for i in range(3000))
    path.write_bytes((HEADER + good).encode() + "ريم@example.org,ريم,,,\n".encode("cp1256"))
    with pytest.raises(CsvError, match=r"not UTF-8 \(byte \d+, line 3002\)"):
        import_csv(engine, path, daily, topics, OPTIONS)
    assert _count(session, Subscriber) == 0


def test_header_without_email_column(
    tmp_path: Path, engine: Engine, daily: MailingList, topics: dict[str, int]
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("mail,name\na@example.org,x\n", encoding="utf-8")
    with pytest.raises(CsvError, match="no 'email' column"):
        import_csv(engine, path, daily, topics, OPTIONS)
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(CsvError, match="empty"):
        import_csv(engine, tmp_path / "empty.csv", daily, topics, OPTIONS)


def test_failed_batch_leaves_no_partial_rows(
    tmp_path: Path,
    engine: Engine,
    session: Session,
    daily: MailingList,
    topics: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Scenario: the database fails while writing the topics of the second batch.
    import subscribers.import_batches as module

    calls = {"n": 0}
    real = module.BatchWriter.write

    def flaky(self, rows):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        counts = real(self, rows)
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return counts

    monkeypatch.setattr(module.BatchWriter, "write", flaky)
    path = _csv(tmp_path, "".join(f"u{i}@example.org,,politics,,\n" for i in range(25)))
    with pytest.raises(RuntimeError):
        import_csv(engine, path, daily, topics, ImportOptions("Asia/Riyadh", batch_size=10))
    assert _count(session, Subscriber) == 10
    assert _count(session, Subscription) == 10
    assert _count(session, SubscriptionTopic) == 10


def test_case_variants_in_one_file_are_duplicates(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    path = _csv(tmp_path, "Reem@example.org,,,,\nREEM@example.org,,,,\nreem@EXAMPLE.ORG,,,,\n")
    report = import_csv(engine, path, daily, topics, OPTIONS)
    assert (report.created, report.rejected) == (1, 2)
    assert [r.reason for r in report.rejects] == ["duplicate of line 2"] * 2
    assert _count(session, Subscriber) == 1


def test_field_over_the_csv_limit_is_a_rejected_row(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    # Scenario (item 17): a 200 kB name made the csv module raise after the first batches
    # were written: a traceback and half an import.
    huge = "x" * (csv.field_size_limit() + 10)
    path = _csv(
        tmp_path,
        "a@example.org,,,,\nb@example.org,,,,\n"
        f"big@example.org,{huge},,,\n"
        "c@example.org,,,,\nd@example.org,,,,\n",
    )
    rejects = tmp_path / "rejects.csv"
    options = ImportOptions("Asia/Riyadh", batch_size=2, rejects_path=rejects)
    report = import_csv(engine, path, daily, topics, options)
    assert (report.rows, report.created, report.rejected) == (5, 4, 1)
    (reject,) = report.rejects
    assert reject.line == 4 and "column 'name'" in reject.reason
    assert "field larger than field limit" in reject.reason
    assert _count(session, Subscriber) == 4
    assert "column 'name'" in rejects.read_text(encoding="utf-8")


def test_rejects_stream_to_the_file_and_the_report_keeps_a_few(
    tmp_path: Path, engine: Engine, daily: MailingList, topics: dict[str, int]
) -> None:
    # Item 17: memory does not grow with the number of bad rows.
    from subscribers.imports import KEPT_REJECTS

    bad = KEPT_REJECTS * 3
    path = _csv(tmp_path, "".join(f"bad{i},,,,\n" for i in range(bad)) + "ok@example.org,,,,\n")
    rejects = tmp_path / "rejects.csv"
    report = import_csv(
        engine, path, daily, topics, ImportOptions("Asia/Riyadh", rejects_path=rejects)
    )
    assert (report.rejected, report.rejects_written, report.created) == (bad, bad, 1)
    assert len(report.rejects) == KEPT_REJECTS
    rows = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert len(rows) == bad and rows[-1]["email"] == f"bad{bad - 1}"


def test_rejects_file_neutralises_formulas(
    tmp_path: Path, engine: Engine, daily: MailingList, topics: dict[str, int]
) -> None:
    path = _csv(tmp_path, '=HYPERLINK("http://evil"),@SUM(1),-2+3,+x,\n')
    rejects = tmp_path / "rejects.csv"
    import_csv(engine, path, daily, topics, ImportOptions("Asia/Riyadh", rejects_path=rejects))
    (row,) = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert row["email"] == '\'=HYPERLINK("http://evil")'
    assert (row["name"], row["topics"], row["timezone"]) == ("'@SUM(1)", "'-2+3", "'+x")
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_exported_formula_cells_import_back_as_they_were(
    tmp_path: Path, engine: Engine, session: Session, daily: MailingList, topics: dict[str, int]
) -> None:
    # An address may start with `-` or `+`: the export's leading `'` is read back off.
    from subscribers.exports import write_csv

    path = _csv(tmp_path, "-news@example.org,=1+1,,,\n+plus@example.org,@ali,,,\n")
    assert import_csv(engine, path, daily, topics, OPTIONS).created == 2
    exported = tmp_path / "out.csv"
    with exported.open("w", encoding="utf-8", newline="") as handle:
        write_csv(handle, engine, daily)
    text = exported.read_text(encoding="utf-8")
    assert "'-news@example.org,'=1+1" in text and "'+plus@example.org,'@ali" in text
    report = import_csv(engine, exported, daily, topics, OPTIONS)
    assert (report.created, report.updated, report.rejected) == (0, 2, 0)
    session.expire_all()
    assert sorted((s.email, s.name) for s in session.exec(select(Subscriber))) == [
        ("+plus@example.org", "@ali"),
        ("-news@example.org", "=1+1"),
    ]


_NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(
        "\x00\x01\x1b\x7f\x85\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\n\r\t"
    ),
    max_size=40,
)
_UNSAFE = set(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) | set("\u202a\u202b\u202c\u202d\u202e")
_UNSAFE |= set("\u2066\u2067\u2068\u2069\u2028\u2029")


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(_NAMES, min_size=1, max_size=5))
def test_names_from_csv_never_store_controls(
    tmp_path: Path,
    engine: Engine,
    session: Session,
    daily: MailingList,
    topics: dict[str, int],
    names: list[str],
) -> None:
    # Item 16: NUL, controls and bidi overrides never reach the database (PostgreSQL
    # refuses a NUL: the whole batch would fail).
    path = tmp_path / "names.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name"])
        writer.writerows([f"n{i}@example.org", name] for i, name in enumerate(names))
    report = import_csv(engine, path, daily, topics, OPTIONS)
    assert report.rejected == 0, report.rejects
    session.expire_all()
    stored = list(session.exec(select(Subscriber.name)))
    assert len(stored) >= len(names)
    assert not any(set(name) & _UNSAFE for name in stored)
