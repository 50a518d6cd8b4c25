"""The dbt project builds and passes its tests on empty and on small realistic raw data.

A scratch warehouse gets the raw schema exactly as ingestion creates it (`ensure_raw_schema`), then:

1. ``dbt build`` on empty tables;
2. three loads, each followed by an incremental ``dbt build``; the second sales load brings
   late-arriving history (older dates), a new product and a new latest date, plus a correction (a
   re-delivered key with other values, moved to another day: the latest version wins); the third only a
   new latest date (exercises the "previous max + 1" window);
3. mart row counts and a few hand-checked values are asserted (the same numbers on every target);
4. ``dbt build --full-refresh`` must reproduce the incremental fct_sales_daily / fct_interactions
   row for row.

Runs on DuckDB always, and on PostgreSQL in a throw-away database (the `pg_dsn` fixture: skipped on a
machine without PostgreSQL, a failure in CI).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from dbt.cli.main import dbtRunner

from ml.recommend import MART_RECENCY, Recency, Scoring, scores_from_events
from optimum.settings import DBT_PROJECT_DIR, Settings
from orchestration.dbt import dbt_environment
from orchestration.landing.raw_tables import RAW_COLUMNS, ensure_raw_schema, qualified
from orchestration.warehouse import Warehouse

D = dt.date
T = dt.datetime

# pandas dtypes for the SQL types of RAW_COLUMNS, so `Connection.append` writes typed values on both targets.
_DTYPES = {
    "VARCHAR": "str",
    "BIGINT": "Int64",
    "DOUBLE PRECISION": "float64",
    "DATE": "datetime64[us]",
    "TIMESTAMP": "datetime64[us]",
}


def _landed(table: str, load_id: int, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of one landed file: business columns as given (in RAW_COLUMNS order), lineage columns filled in."""
    columns = RAW_COLUMNS[table]
    frame = pd.DataFrame(rows, columns=[c for c in columns if not c.startswith("_")])
    if "_source_line" in columns:
        frame["_source_file"] = f"{table}_{load_id}.csv"
        frame["_source_line"] = range(1, len(frame) + 1)
    frame["_load_id"] = load_id
    frame["_loaded_at"] = T(2024, 1, 1) + dt.timedelta(hours=load_id)
    return frame.astype({c: _DTYPES[columns[c]] for c in frame.columns})


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
            ("O1", D(2024, 1, 5), "P1", 5, 49.99, "C1"),  # correction of O1/P1: Jan 1 x1 -> Jan 5 x5
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


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path) -> Settings:
    if request.param == "postgres":
        return Settings(home=tmp_path / "state", target="postgres", pg_dsn=request.getfixturevalue("pg_dsn"))
    return Settings(home=tmp_path / "state", target="duckdb")


@pytest.fixture
def warehouse(settings: Settings) -> Warehouse:
    warehouse = Warehouse.from_settings(settings)
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
    return warehouse


@pytest.fixture
def dbt(settings: Settings, tmp_path) -> Callable[..., None]:
    return _dbt_runner(settings, tmp_path)


def _dbt_runner(settings: Settings, tmp_path) -> Callable[..., None]:
    """`dbt <args>` in process, with the settings' profile variables and --vars, as the asset runs it."""

    def run(*args: str) -> None:
        with dbt_environment(settings):
            result = dbtRunner().invoke(
                [
                    *args,
                    "--vars",
                    json.dumps(settings.dbt_vars()),
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


def _load(warehouse: Warehouse, batch: dict[str, pd.DataFrame]) -> None:
    with warehouse.transaction() as conn:
        for table, frame in batch.items():
            conn.append(qualified(table), frame)


def _counts(warehouse: Warehouse) -> dict[str, int]:
    return {relation: warehouse.row_count(relation) for relation in EXPECTED_COUNTS}


def _records(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts, with every null as None on both targets (DuckDB gives NaN/NaT, psycopg2 None)."""
    frame = warehouse.query(sql)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.mark.timeout(90)
def test_dbt_build_empty_then_incremental_matches_full_refresh(warehouse: Warehouse, dbt) -> None:
    dbt("build")  # every raw table empty: must build and pass
    assert set(_counts(warehouse).values()) == {0}

    for batch in (BATCH_1, BATCH_2, BATCH_3):
        _load(warehouse, batch)
        dbt("build")

    assert _counts(warehouse) == EXPECTED_COUNTS

    sales_daily = warehouse.query("select * from marts.fct_sales_daily order by product_id, sales_date")
    interactions = warehouse.query("select * from marts.fct_interactions order by event_id")

    # Zero-filled days after late history and new dates (P1 on Jan 16, 17: no sales, kept at 0).
    by_key = {
        (r["product_id"], pd.Timestamp(r["sales_date"])): r
        for r in _records(warehouse, "select * from marts.fct_sales_daily")
    }

    def day(product_id: str, date: dt.date) -> tuple[Any, ...]:
        r = by_key[(product_id, pd.Timestamp(date))]
        return r["quantity"], float(r["revenue"]), r["n_orders"], r["avg_unit_price"]

    assert day("P1", D(2024, 1, 3))[:3] == pytest.approx((2, 99.98, 1))  # late O8
    assert day("P1", D(2024, 1, 1))[:3] == (0, 0, 0)  # the corrected O1 line left Jan 1 ...
    assert day("P1", D(2024, 1, 5))[:3] == pytest.approx((6, 5 * 49.99 + 47.5, 2))  # ... for Jan 5, with O4
    assert day("P1", D(2024, 1, 17)) == (0, 0, 0, None)
    assert min(d for (p, d) in by_key if p == "P3") == pd.Timestamp(2024, 1, 2)

    products = {
        r["product_id"]: r
        for r in _records(warehouse, "select product_id, price, is_catalogued, units_sold from marts.dim_products")
    }
    assert float(products["P1"]["price"]) == pytest.approx(44.99)
    assert float(products["P2"]["price"]) == pytest.approx(8.75)
    assert products["P6"]["units_sold"] == 0
    assert {p: r["is_catalogued"] for p, r in products.items()} == {
        **{f"P{i}": True for i in range(1, 8)},
        "P8": False,  # seen only in interactions: inferred, not catalogued
    }

    users = {r["user_id"]: r["favourite_category"] for r in _records(warehouse, "select * from marts.dim_users")}
    assert users == {"U1": "brakes", "U2": "oil", "U3": "wipers", "U4": None}

    scores = {(r["user_id"], r["product_id"]): r for r in _records(warehouse, "select * from marts.user_item_scores")}
    # U2/P3: view at Jan 3 12:00, like at 12:01, purchase at Jan 22 15:00 (the latest event overall).
    age_view = 19 + 3 / 24
    expected_score = 5 + 1 * 2 ** (-age_view / 30) + 2 * 2 ** (-(age_view - 1 / 1440) / 30)
    assert float(scores[("U2", "P3")]["score"]) == pytest.approx(expected_score, rel=1e-9)
    assert (scores[("U1", "P1")]["n_events"], scores[("U1", "P1")]["has_purchased"]) == (3, True)

    leads = {
        r["name"]: tuple(r.values())[1:]
        for r in _records(
            warehouse,
            "select name, phone_normalized, address_normalized, n_source_urls, n_observations, review_count,"
            " rating, website from marts.dim_leads",
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
    assert _counts(warehouse) == EXPECTED_COUNTS
    pd.testing.assert_frame_equal(
        warehouse.query("select * from marts.fct_sales_daily order by product_id, sales_date"), sales_daily
    )
    pd.testing.assert_frame_equal(
        warehouse.query("select * from marts.fct_interactions order by event_id"), interactions
    )


def _daily_sales(load_id: int, products: list[str], first: dt.date, last: dt.date) -> pd.DataFrame:
    """One order line a day per product, first..last."""
    days = pd.date_range(first, last, freq="D").date
    rows = [(f"O{load_id}-{p}-{d}", d, p, 1, 10.0, None) for d in days for p in products]
    return _landed("sales", load_id, rows)


@pytest.mark.timeout(120)
def test_a_stray_sale_ahead_keeps_its_row_without_zero_filling_the_catalogue(warehouse: Warehouse, dbt) -> None:
    products = _landed("products", 1, [(p, p, "misc", None, 10.0, 5) for p in ("P1", "P2", "P3")])
    bulk = _daily_sales(2, ["P1", "P2", "P3"], D(2024, 1, 1), D(2024, 1, 28))
    stray = _landed("sales", 3, [("TYPO", D(2024, 6, 3), "P1", 2, 10.0, None)])  # a test order months ahead
    _load(warehouse, {"products": products, "sales": bulk})
    dbt("build")
    _load(warehouse, {"sales": stray})
    dbt("build")
    sql = "select product_id, sales_date, quantity, n_orders from marts.fct_sales_daily order by product_id, sales_date"
    daily = warehouse.query(sql)
    assert len(daily) == 3 * 28 + 1  # the bulk's grid and the stray sale's own row, not 3 x 155 days
    assert pd.Timestamp(daily["sales_date"].max()) == pd.Timestamp(2024, 6, 3)
    assert daily[pd.to_datetime(daily["sales_date"]) > pd.Timestamp(2024, 1, 28)]["quantity"].tolist() == [2]

    # The data catches up with the stray date (P2 sells every day to June 10): the grid now runs to the new
    # end for every product, incrementally exactly as a full refresh builds it.
    _load(warehouse, {"sales": _daily_sales(4, ["P2"], D(2024, 1, 29), D(2024, 6, 10))})
    dbt("build")
    incremental = warehouse.query(sql)
    assert len(incremental) == 3 * (28 + 134)
    dbt("build", "--full-refresh")
    pd.testing.assert_frame_equal(warehouse.query(sql), incremental)


@pytest.mark.timeout(120)
def test_python_scoring_matches_the_score_mart(tmp_path) -> None:
    """Weights, half-life and decay floor come from one place (settings, handed to dbt as --vars): ml's
    scores_from_events and marts.user_item_scores agree on the same events. Non-default values, so a stale
    copy would show."""
    weights = {"view": 1, "like": 4, "cart": 6, "purchase": 11}
    settings = Settings(
        home=tmp_path / "state", target="duckdb", half_life_days=7.5, interaction_weights=weights, min_decay=0.2
    )
    warehouse = Warehouse.from_settings(settings)
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
    for batch in (BATCH_1, BATCH_2):
        _load(warehouse, batch)
    _dbt_runner(settings, tmp_path)("build")

    events = warehouse.query("select * from marts.fct_interactions")
    assert set(events["interaction_type"]) == set(weights), "every weight is exercised"
    recency = Recency(settings.half_life_days, MART_RECENCY.age_from)  # the mart's own age reference
    python = scores_from_events(events, recency, Scoring.from_settings(settings))
    default_floor = scores_from_events(events, recency, Scoring(weights, 0.001))
    assert (python["score"] - default_floor["score"]).abs().max() > 0.01, "the floor is exercised (19-day-old events)"
    mart = warehouse.query("select * from marts.user_item_scores order by user_id, product_id")
    assert len(mart) == len(python) > 0
    merged = mart.merge(python, on=["user_id", "product_id"], suffixes=("_dbt", "_python"), validate="1:1")
    assert merged["score_dbt"].to_numpy() == pytest.approx(merged["score_python"].to_numpy(), rel=1e-9)
    assert (merged["n_events_dbt"] == merged["n_events_python"]).all()
    assert (merged["has_purchased_dbt"] == merged["has_purchased_python"]).all()
