"""Which database the tests run on (DIGEST_TEST_DATABASE) and PostgreSQL admin statements."""

from __future__ import annotations

import os

from tests.helpers import pg

# Read once at import: the autouse _clean_env fixture removes every DIGEST_* variable per test.
TEST_DATABASE = os.environ.get("DIGEST_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
ON_POSTGRES = TEST_DATABASE in {"postgresql", "postgres", "pg"}
if TEST_DATABASE not in {"sqlite", "postgresql", "postgres", "pg"}:
    raise RuntimeError(f"DIGEST_TEST_DATABASE={TEST_DATABASE!r}: use sqlite or postgresql")
# The migrated database each PostgreSQL test database is copied from.
TEMPLATE = "digest_template"


def admin(server: pg.Server, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]
