"""Throw-away PostgreSQL databases for the benchmarks, on the server the tests use (trust auth, user postgres)."""

from __future__ import annotations

import os

ADMIN_DSN = os.environ.get("OPTIMUM_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin(sql: str) -> None:
    """Run one statement outside a transaction (CREATE / DROP DATABASE need that)."""
    import psycopg2

    con = psycopg2.connect(ADMIN_DSN)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(sql)
    con.close()


def database_dsn(database: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"
