"""The dbt project builds and passes its tests on empty and on small realistic raw data.

A scratch warehouse gets the four raw tables (as the ingestion creates them), then:

1. ``dbt build`` on empty tables;
2. three loads, each followed by an incremental ``dbt build``; the second sales load brings
   late-arriving history (older dates), a new product and a new latest date, plus a re-delivered
   duplicate key; the third only a new latest date (exercises the "previous max + 1" window);
3. mart row counts and a few hand-checked values are asserted (the same numbers on every target);
4. ``dbt build --full-refresh`` must reproduce the incremental fct_sales_daily / fct_interactions
   row for row.

Runs on DuckDB always, and on PostgreSQL when OPTIMUM_TEST_PG_DSN points at a server the test may
create (and drop) a scratch database on.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

RAW_COLUMNS: dict[str, dict[str, str]] = {
    "products": {
        "product_id": "varchar",
        "name": "varchar",
        "category": "varchar",
        "brand": "varchar",
        "price": "double precision",
        "stock_on_hand": "bigint",
        "_source_file": "varchar",
        "_source_line": "bigint",
        "_load_id": "bigint",
        "_loaded_at": "timestamp",
    },
    "sales": {
        "order_id": "varchar",
        "order_date": "date",
        "product_id": "varchar",
        "quantity": "bigint",
        "unit_price": "double precision",
        "customer_id": "varchar",
        "_source_file": "varchar",
        "_source_line": "bigint",
        "_load_id": "bigint",
        "_loaded_at": "timestamp",
    },
    "interactions": {
        "event_id": "varchar",
        "user_id": "varchar",
        "product_id": "varchar",
        "interaction_type": "varchar",
        "rating": "double precision",
        "event_at": "timestamp",
        "session_id": "varchar",
        "_source_file": "varchar",
        "_source_line": "bigint",
        "_load_id": "bigint",
        "_loaded_at": "timestamp",
    },
    "leads": {
        "name": "varchar",
        "category": "varchar",
        "address": "varchar",
        "city": "varchar",
        "phone": "varchar",
        "website": "varchar",
        "rating": "double precision",
        "review_count": "bigint",
        "source_url": "varchar",
        "scraped_at": "timestamp",
        "_load_id": "bigint",
        "_loaded_at": "timestamp",
    },
}

D = dt.date
T = dt.datetime


def _landed(table: str, load_id: int, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of one landed file: business columns as given, lineage columns filled in."""
    business = [c for c in RAW_COLUMNS[table] if not c.startswith("_")]
    loaded_at = T(2024, 1, 1) + dt.timedelta(hours=load_id)
    out = []
    for line, values in enumerate(rows, start=1):
        row = dict(zip(business, values, strict=True))
        if table != "leads":
            row["_source_file"] = f"{table}_{load_id}.csv"
            row["_source_line"] = line
        row["_load_id"] = load_id
        row["_loaded_at"] = loaded_at
        out.append(row)
    return out


# Load ids increase across all sources, as in production.
BATCH_1 = {
    "products": _landed(
        "products",
        1,
        [
            ("P1", "Brake Pad Set", "brakes", "Bosch", 49.99, 10),
            ("P2", "Oil Filter", "filters", "Mann", 8.5, 100),
            ("P3", "Engine Oil 5W-30 5L", "oil", "Castrol", 32.0, 40),
            ("P4", "Car Battery 70Ah", "batteries", "Varta", 119.0, None),
            ("P5", "Wiper Blade 600mm", "wipers", None, 12.75, 25),
            ("P6", "Spark Plug", "ignition", "NGK", 6.2, 200),  # never sold
        ],
    ),
    "sales": _landed(
        "sales",
        2,
        [
            ("O1", D(2024, 1, 1), "P1", 1, 49.99, "C1"),
            ("O1", D(2024, 1, 1), "P2", 2, 8.5, "C1"),
            ("O2", D(2024, 1, 3), "P2", 1, 8.5, None),
            ("O3", D(2024, 1, 5), "P3", 2, 32.0, "C2"),
            ("O4", D(2024, 1, 5), "P1", 1, 47.5, "C3"),
            ("O5", D(2024, 1, 10), "P4", 1, 119.0, "C2"),
            ("O6", D(2024, 1, 10), "P2", 3, 8.0, "C4"),
        ],
    ),
    "interactions": _landed(
        "interactions",
        3,
        [
            ("E1", "U1", "P1", "view", None, T(2024, 1, 1, 10, 0), "S1"),
            ("E2", "U1", "P1", "cart", None, T(2024, 1, 1, 10, 5), "S1"),
            ("E3", "U1", "P1", "purchase", None, T(2024, 1, 1, 10, 10), "S1"),
            ("E4", "U1", "P2", "view", None, T(2024, 1, 2, 9, 0), "S2"),
            ("E5", "U2", "P3", "view", None, T(2024, 1, 3, 12, 0), "S3"),
            ("E6", "U2", "P3", "like", 5.0, T(2024, 1, 3, 12, 1), "S3"),
            ("E7", "U2", "P4", "view", None, T(2024, 1, 4, 8, 0), None),
            ("E8", "U3", "P5", "view", None, T(2024, 1, 5, 18, 30), "S4"),
        ],
    ),
    "leads": _landed(
        "leads",
        4,
        [
            (
                "Main Street Garage",
                "Auto repair",
                "12 Main Street",
                "Springfield",
                "(555) 123-4567",
                None,
                4.5,
                120,
                "https://maps.example.com/place/1",
                T(2024, 1, 5, 10, 0),
            ),
            (
                "MAIN STREET  GARAGE",
                "Auto repair",
                "12 main st.",
                "Springfield",
                "555.123.4567",
                "https://mainstreetgarage.example",
                4.4,
                118,
                "https://yellow.example.com/biz/msg",
                T(2024, 1, 5, 11, 0),
            ),
            (
                "Oak Avenue Tyres",
                "Tyre shop",
                "400 Oak Avenue, Suite 2",
                "Shelbyville",
                "555-987-6543",
                None,
                4.1,
                40,
                "https://maps.example.com/place/2",
                T(2024, 1, 5, 12, 0),
            ),
            (
                "Bob's Body Shop",
                "Body shop",
                "7 Elm Road",
                "Capital City",
                None,
                None,
                3.9,
                12,
                "https://maps.example.com/place/3",
                T(2024, 1, 5, 13, 0),
            ),
        ],
    ),
}

BATCH_2 = {
    "products": _landed(
        "products",
        5,
        [
            ("P1", "Brake Pad Set", "brakes", "Bosch", 44.99, 8),  # price change
            ("P7", "Air Filter", "filters", "Mann", 14.0, 30),  # new product
            ("P2", "Oil Filter", "filters", "Mann", 8.5, 90),
            ("P2", "Oil Filter", "filters", "Mann", 8.75, 90),  # later line of the same load wins
        ],
    ),
    "sales": _landed(
        "sales",
        6,
        [
            ("O7", D(2024, 1, 2), "P3", 1, 31.0, "C5"),  # late history: P3 now first sold on Jan 2
            ("O8", D(2024, 1, 3), "P1", 2, 49.99, "C1"),  # late history inside the known range
            ("O9", D(2024, 1, 15), "P7", 1, 14.0, "C6"),  # new product on a new latest date
            ("O10", D(2024, 1, 12), "P5", 4, 12.75, "C2"),  # first sale of P5
            ("O1", D(2024, 1, 1), "P1", 5, 49.99, "C1"),  # re-delivered key: the first delivery wins
        ],
    ),
    "interactions": _landed(
        "interactions",
        7,
        [
            ("E9", "U1", "P7", "view", None, T(2024, 1, 20, 11, 0), "S5"),
            ("E10", "U3", "P5", "cart", None, T(2024, 1, 21, 7, 0), "S6"),
            ("E11", "U4", "P8", "view", None, T(2024, 1, 21, 8, 0), "S7"),  # P8: not in the catalogue
            ("E3", "U1", "P1", "purchase", None, T(2024, 1, 1, 10, 10), "S1"),  # re-delivered event
            ("E12", "U2", "P3", "purchase", None, T(2024, 1, 22, 15, 0), "S8"),
        ],
    ),
    "leads": _landed(
        "leads",
        8,
        [
            (
                "Main Street Garage",
                "Auto repair",
                "12 Main Street",
                "Springfield",
                "+1 555 123 4567",
                None,
                4.6,
                125,
                "https://maps.example.com/place/1",
                T(2024, 2, 1, 10, 0),
            ),  # same URL, new scrape
            (
                "Oak Avenue Tyres",
                "Tyre shop",
                "400 oak ave, suite 2.",
                "Shelbyville",
                "1-555-987-6543",
                "https://oaktyres.example",
                None,
                38,
                "https://yellow.example.com/biz/oak",
                T(2024, 2, 1, 11, 0),
            ),
            (
                "bob's  body shop",
                "Body shop",
                "7 Elm Rd",
                "capital city",
                "",
                None,
                None,
                None,
                "https://yellow.example.com/biz/bob",
                T(2024, 2, 1, 12, 0),
            ),
            (
                "Quick Lube",
                "Oil change",
                "1 Lake Drive",
                "Springfield",
                "555 000 1111",
                None,
                None,
                None,
                "https://maps.example.com/place/4",
                T(2024, 2, 1, 13, 0),
            ),
            (
                "Quick Lube",
                "Oil change",
                "1 Lake Drive",
                "Springfield",
                "555 000 1111",
                None,
                None,
                None,
                "https://maps.example.com/place/4",
                T(2024, 2, 1, 13, 0),
            ),  # exact duplicate
        ],
    ),
}

BATCH_3 = {  # only a new latest date: the window starts at the previous max date + 1
    "sales": _landed(
        "sales",
        9,
        [
            ("O11", D(2024, 1, 17), "P2", 2, 8.75, "C7"),
        ],
    ),
}

# Days per product from first sale to the latest order date (2024-01-17):
# P1 Jan 1 (17) + P2 Jan 1 (17) + P3 Jan 2 (16) + P4 Jan 10 (8) + P5 Jan 12 (6) + P7 Jan 15 (3) = 67.
EXPECTED_COUNTS = {
    "staging.stg_products": 7,
    "staging.stg_sales": 12,
    "staging.stg_interactions": 12,
    "staging.stg_leads": 8,
    "marts.dim_products": 8,  # 7 catalogued + inferred P8
    "marts.dim_users": 4,
    "marts.fct_sales_daily": 67,
    "marts.fct_interactions": 12,
    "marts.user_item_scores": 7,
    "marts.dim_leads": 4,
    "snapshots.snap_products": 9,  # 6 first versions + P7 + new P1 and P2 versions
}
COUNTED_RELATIONS = tuple(EXPECTED_COUNTS)


class Warehouse:
    """Just enough of a DB-API wrapper to create raw tables, insert rows and read marts back."""

    def __init__(self, connect):
        self._connect = connect

    def execute(self, *statements: str) -> None:
        conn = self._connect()
        try:
            cur = conn.cursor()
            for statement in statements:
                cur.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(row) for row in cur.fetchall()]
        finally:
            conn.close()

    def create_raw_tables(self) -> None:
        statements = ["create schema if not exists raw"]
        for table, columns in RAW_COLUMNS.items():
            cols = ", ".join(f"{name} {type_}" for name, type_ in columns.items())
            statements.append(f"create table raw.{table} ({cols})")
        self.execute(*statements)

    def load(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        statements = []
        for table, rows in batch.items():
            columns = list(RAW_COLUMNS[table])
            for row in rows:
                values = ", ".join(_literal(row[c]) for c in columns)
                statements.append(f"insert into raw.{table} ({', '.join(columns)}) values ({values})")
        self.execute(*statements)

    def counts(self) -> dict[str, int]:
        return {rel: self.query(f"select count(*) from {rel}")[0][0] for rel in COUNTED_RELATIONS}


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    return repr(value)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path, monkeypatch) -> Iterator[Warehouse]:
    for name in [n for n in os.environ if n.startswith("OPTIMUM_") and n != "OPTIMUM_TEST_PG_DSN"]:
        monkeypatch.delenv(name)
    if request.param == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        path = tmp_path / "warehouse.duckdb"
        monkeypatch.setenv("OPTIMUM_TARGET", "duckdb")
        monkeypatch.setenv("OPTIMUM_DUCKDB_PATH", str(path))
        yield Warehouse(lambda: duckdb.connect(str(path)))
        return

    dsn = os.environ.get("OPTIMUM_TEST_PG_DSN")
    if not dsn:
        pytest.skip("OPTIMUM_TEST_PG_DSN is not set")
    psycopg2 = pytest.importorskip("psycopg2")
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    scratch = f"optimum_dbt_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    admin.cursor().execute(f'create database "{scratch}"')
    monkeypatch.setenv("OPTIMUM_TARGET", "postgres")
    monkeypatch.setenv("OPTIMUM_PG_HOST", params.get("host", "localhost"))
    monkeypatch.setenv("OPTIMUM_PG_PORT", str(params.get("port", 5432)))
    monkeypatch.setenv("OPTIMUM_PG_USER", params.get("user", "postgres"))
    monkeypatch.setenv("OPTIMUM_PG_PASSWORD", params.get("password", ""))
    monkeypatch.setenv("OPTIMUM_PG_DBNAME", scratch)
    try:
        yield Warehouse(lambda: psycopg2.connect(**{**params, "dbname": scratch}))
    finally:
        admin.cursor().execute(f'drop database if exists "{scratch}" with (force)')
        admin.close()


@pytest.fixture
def dbt(tmp_path):
    from dbt.cli.main import dbtRunner

    def run(*args: str) -> None:
        result = dbtRunner().invoke(
            [
                *args,
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(tmp_path / "target"),
                "--log-path",
                str(tmp_path / "logs"),
            ]
        )
        failures = [
            f"{r.node.name}: {r.status} {r.message}"
            for r in (result.result or [])
            if str(r.status) not in ("success", "pass", "warn")
        ]
        assert result.success, (result.exception, failures)

    return run


def _rows(warehouse: Warehouse, relation: str, order_by: str) -> list[tuple[Any, ...]]:
    return warehouse.query(f"select * from {relation} order by {order_by}")


@pytest.mark.timeout(90)
def test_dbt_build_empty_then_incremental_matches_full_refresh(warehouse: Warehouse, dbt) -> None:
    warehouse.create_raw_tables()

    dbt("build")  # every raw table empty: must build and pass
    assert set(warehouse.counts().values()) == {0}

    for batch in (BATCH_1, BATCH_2, BATCH_3):
        warehouse.load(batch)
        dbt("build")

    assert warehouse.counts() == EXPECTED_COUNTS

    sales_daily = _rows(warehouse, "marts.fct_sales_daily", "product_id, sales_date")
    interactions = _rows(warehouse, "marts.fct_interactions", "event_id")

    # Zero-filled days after late history and new dates (P1 on Jan 16, 17: no sales, kept at 0).
    by_key = {(r[0], r[1]): r for r in sales_daily}
    assert by_key[("P1", D(2024, 1, 3))][2:5] == (2, Decimal("99.98"), 1)  # late O8
    assert by_key[("P1", D(2024, 1, 1))][2] == 1  # the re-delivered O1 line did not count twice
    assert by_key[("P1", D(2024, 1, 17))][2:6] == (0, 0, 0, None)
    assert min(d for (p, d) in by_key if p == "P3") == D(2024, 1, 2)

    products = {
        r[0]: r
        for r in warehouse.query(
            "select product_id, price, is_catalogued, units_sold from marts.dim_products"
        )
    }
    assert float(products["P1"][1]) == pytest.approx(44.99)
    assert float(products["P2"][1]) == pytest.approx(8.75)
    assert products["P6"][3] == 0
    assert products["P8"][2] is False

    users = dict(warehouse.query("select user_id, favourite_category from marts.dim_users"))
    assert users == {"U1": "brakes", "U2": "oil", "U3": "wipers", "U4": None}

    scores = {
        (r[0], r[1]): r[2:]
        for r in warehouse.query(
            "select user_id, product_id, score, n_events, has_purchased from marts.user_item_scores"
        )
    }
    # U2/P3: view at Jan 3 12:00, like at 12:01, purchase at Jan 22 15:00 (the latest event overall).
    age_view = 19 + 3 / 24
    expected_score = 5 + 1 * 2 ** (-age_view / 30) + 2 * 2 ** (-(age_view - 1 / 1440) / 30)
    assert scores[("U2", "P3")][0] == pytest.approx(expected_score, rel=1e-9)
    assert scores[("U1", "P1")][1:] == (3, True)

    leads = {
        r[0]: r[1:]
        for r in warehouse.query(
            "select name, phone_normalized, address_normalized, n_source_urls, n_observations, review_count,"
            " rating, website from marts.dim_leads"
        )
    }
    assert leads["Main Street Garage"] == (
        "5551234567",
        "12 main st",
        2,
        3,
        125,
        4.6,
        "https://mainstreetgarage.example",
    )
    assert leads["Oak Avenue Tyres"][:5] == ("5559876543", "400 oak ave, suite 2", 2, 2, 40)
    assert leads["Bob's Body Shop"][:4] == (None, "7 elm rd", 2, 2)
    assert leads["Quick Lube"][2:4] == (1, 1)

    dbt("build", "--full-refresh")
    assert warehouse.counts() == EXPECTED_COUNTS
    assert _rows(warehouse, "marts.fct_sales_daily", "product_id, sales_date") == sales_daily
    assert _rows(warehouse, "marts.fct_interactions", "event_id") == interactions
