"""Benchmark `subscribers import`: our importer vs a naive ORM loop vs raw sqlite3 inserts.

Run: python bench/import_bench.py [--rows 100000] [--naive-rows 10000]
Each variant runs in its own subprocess on a fresh SQLite file, so peak RSS is its own.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from subscribers.models import MailingList

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZONES = ["Asia/Riyadh", "Africa/Cairo", "Asia/Dubai", "Europe/London", "America/New_York"]
TOPICS = [f"topic{i}" for i in range(20)]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "topics", "timezone", "hour"])
        for i in range(rows):
            topics = "|".join(rng.sample(TOPICS, rng.randint(1, 4)))
            writer.writerow(
                [
                    f"reader{i}@example{i % 97}.org",
                    f"قارئ {i}",
                    topics,
                    rng.choice(ZONES),
                    rng.randint(5, 9),
                ]
            )


def _prepare(db: Path) -> tuple[Engine, MailingList, dict[str, int]]:
    from sqlmodel import Session

    from digest.catalog.topics import add_topic
    from digest.db.engine import make_engine, upgrade
    from subscribers.lists import ListSpec, create_list

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        ids = [add_topic(session, slug=t, name=t).id or 0 for t in TOPICS]
        mailing_list = create_list(session, ListSpec(slug="daily", name="يومية", topic_ids=ids))
        session.commit()
        session.refresh(mailing_list)
    return engine, mailing_list, dict(zip(TOPICS, ids, strict=True))


def run_engine(csv_path: Path, db: Path) -> int:
    from subscribers.imports import ImportOptions, import_csv

    engine, mailing_list, topics = _prepare(db)
    start = time.perf_counter()
    report = import_csv(
        engine,
        csv_path,
        mailing_list,
        topics,
        ImportOptions(default_timezone="Asia/Riyadh"),
    )
    _emit(report.created, time.perf_counter() - start)
    return 0


def run_naive(csv_path: Path, db: Path) -> int:
    """What a first version would do: full validator and one ORM transaction per row."""
    from email_validator import validate_email
    from sqlmodel import Session

    from subscribers.models import Subscriber, Subscription, SubscriptionTopic

    engine, mailing_list, topics = _prepare(db)
    start = time.perf_counter()
    count = 0
    with csv_path.open(encoding="utf-8") as handle, Session(engine) as session:
        for record in csv.DictReader(handle):
            email = validate_email(record["email"], check_deliverability=False).normalized
            subscriber = Subscriber(email=email, name=record["name"], timezone=record["timezone"])
            session.add(subscriber)
            session.flush()
            subscription = Subscription(
                subscriber_id=subscriber.id or 0,
                list_id=mailing_list.id or 0,
                status="active",
                send_hour=int(record["hour"]),
            )
            session.add(subscription)
            session.flush()
            for position, slug in enumerate(record["topics"].split("|")):
                session.add(
                    SubscriptionTopic(
                        subscription_id=subscription.id or 0,
                        topic_id=topics[slug],
                        position=position,
                    )
                )
            session.commit()
            count += 1
    _emit(count, time.perf_counter() - start)
    return 0


def run_ceiling(csv_path: Path, db: Path) -> int:
    """The raw ceiling: no validation, one executemany of the subscriber rows, sqlite3 directly."""
    _prepare(db)
    start = time.perf_counter()
    connection = sqlite3.connect(db)
    with csv_path.open(encoding="utf-8") as handle:
        rows = [
            (r["email"], r["email"].lower(), r["name"], "ar", r["timezone"], "2026-01-01 00:00:00")
            for r in csv.DictReader(handle)
        ]
    with connection:
        connection.executemany(
            "INSERT INTO subscriber (email, email_key, name, locale, timezone, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    connection.close()
    _emit(len(rows), time.perf_counter() - start)
    return 0


def _emit(rows: int, seconds: float) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb}))


def _child(variant: str, csv_path: Path, work: Path) -> dict[str, float]:
    db = work / f"{variant}.sqlite3"
    output = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--csv", str(csv_path), "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument("--child", choices=["engine", "naive", "ceiling"])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.child:
        runner = {"engine": run_engine, "naive": run_naive, "ceiling": run_ceiling}[args.child]
        return runner(args.csv, args.db)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big, small = work / "big.csv", work / "small.csv"
        generate(big, args.rows)
        generate(small, args.naive_rows)
        results = {
            "raw ceiling (sqlite3 executemany, no checks)": _child("ceiling", big, work),
            "digest importer (validate + upsert + topics)": _child("engine", big, work),
            f"naive ORM loop ({args.naive_rows} rows)": _child("naive", small, work),
        }
    print(f"{'variant':48} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
    for name, r in results.items():
        print(
            f"{name:48} {r['rows']:>8.0f} {r['seconds']:>8.2f} "
            f"{r['rows'] / r['seconds']:>9.0f} {r['peak_mb']:>8.0f}"
        )
    ours = list(results.values())[1]
    naive = list(results.values())[2]
    ratio = (ours["rows"] / ours["seconds"]) / (naive["rows"] / naive["seconds"])
    print(f"digest importer vs naive: {ratio:.1f}x; target >= 20,000 rows/s into SQLite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
