"""The hostile corpus dropped among the demo files, run through the pipeline on both targets.

For every file: rows in = rows loaded + rows quarantined, with the expected reasons; the run succeeds;
a second delivery (a correction, a re-delivery, the late product, good data) loads normally, resolves
the waiting row and corrects the marts.
"""

from __future__ import annotations

from collections import Counter

import pytest

from orchestration.cli import quarantine_listing
from orchestration.warehouse import Warehouse
from tests.conftest import landing_copy
from tests.integration.pipeline import blocking_check_failures, check_results, run_job, settings_for
from tests.landing_corpus import LATE_PRODUCT, first_delivery, second_delivery

pytestmark = pytest.mark.integration


def _deliver(landing, cases) -> None:
    for case in cases:
        (landing / case.source / case.file).write_bytes(case.data)


def _file_outcomes(warehouse: Warehouse, cases) -> dict[str, tuple[int, int, Counter]]:
    """file -> (rows loaded, rows quarantined, reasons) as the warehouse recorded them."""
    log = warehouse.query("SELECT source, source_file, rows_loaded, rows_quarantined FROM raw.load_log")
    outcomes = {}
    for case in cases:
        row = log[(log["source"] == case.source) & (log["source_file"] == case.file)]
        assert len(row) == 1, f"{case.file} must be loaded exactly once"
        reasons = warehouse.query(
            f"SELECT reason FROM raw.{case.source}_quarantine WHERE source_file = ?", (case.file,)
        )["reason"]
        outcomes[case.file] = (int(row["rows_loaded"].iloc[0]), int(row["rows_quarantined"].iloc[0]), Counter(reasons))
    return outcomes


def _expected(cases) -> dict[str, tuple[int, int, Counter]]:
    return {case.file: (case.loaded, case.quarantined, case.reasons) for case in cases}


def _run_hostile_deliveries(tmp, demo, **values):
    landing = landing_copy(demo.out_dir / "landing", tmp / "landing")
    settings = settings_for(tmp, landing, **values)
    warehouse = Warehouse.from_settings(settings)
    _deliver(landing, first_delivery())
    first = run_job(settings, "ingest_and_warehouse")
    after_first = {
        "outcomes": _file_outcomes(warehouse, first_delivery()),
        "day": _sales_day(warehouse),
        "grid": warehouse.query("SELECT min(sales_date) AS lo, max(sales_date) AS hi FROM marts.fct_sales_daily"),
    }
    _deliver(landing, second_delivery())
    second = run_job(settings, "ingest_and_warehouse")
    return settings, warehouse, first, second, after_first


def _sales_day(warehouse) -> int:
    sql = "SELECT quantity FROM marts.fct_sales_daily WHERE product_id = 'P00001' AND sales_date = '2023-03-01'"
    return int(warehouse.query(sql)["quantity"].iloc[0])


@pytest.fixture(scope="module")
def duckdb_hostile(tmp_path_factory, small_demo):
    return _run_hostile_deliveries(tmp_path_factory.mktemp("hostile_duckdb"), small_demo)


def _assert_hostile_outcomes(settings, warehouse, first, second, after_first):
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    assert after_first["outcomes"] == _expected(first_delivery())
    grid = after_first["grid"]
    assert str(grid["lo"].iloc[0])[:4] == "2023" and str(grid["hi"].iloc[0])[:4] == "2023", "no stray date in the grid"
    checks = check_results(first)
    assert checks["raw/sales/quarantine_rate"] is False, "unreadable files quarantine 100% of themselves: warn"
    assert blocking_check_failures(first) == []

    assert second.success, [e.message for e in second.all_events if e.is_failure]
    assert _file_outcomes(warehouse, second_delivery()) == _expected(second_delivery())
    grid = warehouse.query("SELECT min(sales_date) AS lo, max(sales_date) AS hi FROM marts.fct_sales_daily")
    assert grid["lo"].equals(after_first["grid"]["lo"]), "lone deliveries dated 1900 and 2100 leave the grid alone"
    bulk_end = after_first["grid"]["hi"].iloc[0]
    ahead = warehouse.query(f"SELECT product_id, sales_date FROM marts.fct_sales_daily WHERE sales_date > '{bulk_end}'")
    assert ahead.astype(str).values.tolist() == [["P00002", "2023-09-04"]], "an order months ahead is one row"
    late = warehouse.query(
        f"SELECT _source_file, _source_line FROM raw.sales WHERE product_id = '{LATE_PRODUCT}'"
    ).values.tolist()
    assert late == [["h19_late_product.csv", 2]], "the late row loads with its original file and line"
    waiting = quarantine_listing(settings, "sales", "unknown_product_id")
    assert "h19_late_product.csv" not in set(waiting["source_file"]), "resolved rows are no longer waiting"
    assert _sales_day(warehouse) == after_first["day"] + 6, "the correction (quantity 1 -> 7) reaches the mart"
    versions = warehouse.query("SELECT quantity FROM raw.sales WHERE order_id = 'H01-0' ORDER BY _load_id")
    assert versions["quantity"].tolist() == [1, 7], "raw keeps every version"
    nulls = warehouse.query("SELECT order_id, customer_id FROM raw.sales WHERE order_id LIKE 'H15-%' ORDER BY 1")
    assert nulls["customer_id"].tolist()[:2] == ["\\N", "NULL"] and nulls["customer_id"].isna().tolist()[2]
    return after_first["outcomes"]


def test_hostile_files_on_duckdb(duckdb_hostile):
    _assert_hostile_outcomes(*duckdb_hostile)


@pytest.mark.postgres
def test_hostile_files_on_postgres_match_duckdb(tmp_path, small_demo, pg_dsn, duckdb_hostile):
    outcomes = _assert_hostile_outcomes(
        *_run_hostile_deliveries(tmp_path, small_demo, target="postgres", pg_dsn=pg_dsn)
    )
    assert outcomes == duckdb_hostile[4]["outcomes"]
