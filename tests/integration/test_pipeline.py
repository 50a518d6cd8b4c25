"""The whole graph on small generated data: ingest, quarantine, dbt warehouse, checks — on both targets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestration.cli import warehouse_summary
from orchestration.demo.leads import DEMO_PLACES_API_KEY, serving_lead_sources
from orchestration.warehouse import Warehouse
from tests.integration.pipeline import blocking_check_failures, check_results, materialized, run_job, settings_for

pytestmark = pytest.mark.integration

MARTS = (
    "dim_products",
    "dim_users",
    "fct_sales_daily",
    "fct_interactions",
    "user_item_scores",
    "dim_leads",
    "lead_daily",
    "scored_leads",
)


def _materialize_twice(tmp: Path, demo, **values):
    """Run the graph, then run it again on the same landing files (the second run must add nothing)."""
    with serving_lead_sources(demo.out_dir) as lead_sources:
        settings = settings_for(tmp, demo.out_dir / "landing", **lead_sources, **values)
        first = run_job(settings, "ingest_and_warehouse")
        counts_after_first = warehouse_summary(settings)
        second = run_job(settings, "ingest_and_warehouse")
        counts_after_second = warehouse_summary(settings)
    return settings, first, second, counts_after_first, counts_after_second


@pytest.fixture(scope="module")
def duckdb_runs(tmp_path_factory, small_demo):
    return _materialize_twice(tmp_path_factory.mktemp("duckdb"), small_demo)


def _assert_pipeline_is_complete(settings, first, counts, demo):
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    done = materialized(first)
    assert {
        "raw/products",
        "raw/sales",
        "raw/interactions",
        "raw/leads",
        "raw/place_results",
        "raw/lead_status",
    } <= done
    assert {f"marts/{mart}" for mart in MARTS} | {"snapshots/snap_products", "snapshots/snap_lead_status"} <= done
    checks = check_results(first)
    assert any(name.endswith("expectations_raw_sales") for name in checks)
    assert len(checks) > 20, "dbt tests and expectation suites must run as asset checks"
    # quarantine_rate only warns; the planted rows make it fire on the small catalogue (21 bad of 61 lines)
    assert blocking_check_failures(first) == []
    raw_tables = ("raw.sales", "raw.interactions", "raw.products", "raw.leads", "raw.place_results", "raw.lead_status")
    for table in (*raw_tables, *(f"marts.{m}" for m in MARTS)):
        assert counts[table] > 0, table
    _assert_every_planted_row_is_quarantined(Warehouse.from_settings(settings), demo)
    _assert_leads_scraped_politely_and_merged(Warehouse.from_settings(settings), demo)
    _assert_leads_scored_with_status(Warehouse.from_settings(settings), demo, first)


def _assert_every_planted_row_is_quarantined(warehouse, demo):
    planted = json.loads((demo.out_dir / "planted_bad_rows.json").read_text())
    for source in ("sales", "interactions", "products"):
        quarantined = warehouse.query(f"SELECT source_file, source_line, reason FROM raw.{source}_quarantine")
        found = {(r.source_file, int(r.source_line)): r.reason for r in quarantined.itertuples()}
        expected = {(p["file"], p["line"]): p["reason"] for p in planted if p["source"] == source}
        assert found == expected, source


def _assert_leads_scraped_politely_and_merged(warehouse, demo):
    site = demo.site_manifest
    urls = warehouse.query("SELECT source_url FROM raw.leads")["source_url"]
    assert not urls.str.contains("/private/").any(), "robots.txt disallows /private/"
    bad_pages = warehouse.query("SELECT source_file, reason FROM raw.leads_quarantine")
    bad_paths = {url.split("://", 1)[1].split("/", 1)[1] for url in bad_pages["source_file"]}
    assert bad_paths == {path.lstrip("/") for path in site.malformed_urls + site.missing_urls}
    assert set(bad_pages["reason"]) == {"unparseable_page", "fetch_failed"}
    dim_leads = warehouse.row_count("marts.dim_leads")
    api_only = demo.leads_manifest.api_only_phones
    assert dim_leads == site.n_unique_businesses + len(api_only), "duplicate listings merge into one lead"
    sources = warehouse.query("SELECT phone_normalized, sources FROM marts.dim_leads").set_index("phone_normalized")
    both = demo.leads_manifest.directory_phones_in_api
    assert (sources.loc[both, "sources"] == "directory | places_api").all(), "one business on both sources is one lead"
    assert (sources.loc[api_only, "sources"] == "places_api").all()
    bad_records = warehouse.query("SELECT reason, raw_record FROM raw.place_results_quarantine")
    assert len(bad_records) == len(demo.leads_manifest.malformed_record_ids)
    assert set(bad_records["reason"]) == {"malformed_record"}
    assert not warehouse.query("SELECT raw_json FROM raw.place_results")["raw_json"].isna().any()


def _assert_leads_scored_with_status(warehouse, demo, result):
    planted = {(p["line"], p["reason"]) for p in demo.leads_manifest.planted_status_rows}
    found = warehouse.query("SELECT source_line, reason FROM raw.lead_status_quarantine")
    assert {(int(r.source_line), r.reason) for r in found.itertuples()} == planted
    scored = warehouse.query("SELECT * FROM marts.scored_leads")
    assert len(scored) == warehouse.row_count("marts.dim_leads")
    assert scored["lead_score"].between(0, 100).all() and scored["score_reasons"].str.len().gt(0).all()
    assert scored["lead_score"].std() > 10 and scored["lead_score"].max() - scored["lead_score"].min() >= 40
    statuses = warehouse.query("SELECT status, count(*) AS n FROM marts.dim_leads GROUP BY status")
    assert {"new", "won", "lost"} <= set(statuses["status"]), "CRM statuses reach dim_leads"
    daily = warehouse.query("SELECT * FROM marts.lead_daily WHERE is_scrape_day")
    assert daily["new_leads"].sum() == warehouse.row_count("marts.dim_leads")
    assert check_results(result)["marts/lead_daily/new_leads_target"] is True
    assert DEMO_PLACES_API_KEY not in json.dumps([str(e) for e in result.all_events])


def test_duckdb_pipeline_loads_everything_and_quarantines_every_planted_row(duckdb_runs, small_demo):
    settings, first, _, counts, _ = duckdb_runs
    _assert_pipeline_is_complete(settings, first, counts, small_demo)


def test_dbt_assets_carry_row_counts_and_typed_described_columns(duckdb_runs):
    _, first, _, counts, _ = duckdb_runs
    events = {e.asset_key.to_user_string(): e for e in first.get_asset_materialization_events()}
    metadata = events["marts/fct_sales_daily"].step_materialization_data.materialization.metadata
    assert metadata["dagster/row_count"].value == counts["marts.fct_sales_daily"]
    columns = {c.name: c for c in metadata["dagster/column_schema"].value.columns}
    assert columns["sales_date"].type == "DATE" and columns["quantity"].type in ("BIGINT", "INTEGER")
    assert columns["product_id"].description == "Product sold."
    view = events["staging/stg_sales"].step_materialization_data.materialization.metadata
    assert view["dagster/row_count"].value == counts["staging.stg_sales"]


def test_rerun_adds_no_rows(duckdb_runs):
    _, _, second, counts_first, counts_second = duckdb_runs
    assert second.success
    assert counts_second == counts_first


def test_fct_sales_daily_is_zero_filled_to_the_datas_last_day(duckdb_runs):
    settings = duckdb_runs[0]
    warehouse = Warehouse.from_settings(settings)
    gaps = warehouse.query(
        """
        SELECT product_id, count(*) AS days, min(sales_date) AS first_day, max(sales_date) AS last_day
        FROM marts.fct_sales_daily GROUP BY product_id
        """
    )
    latest = warehouse.query("SELECT max(order_date) AS d FROM raw.sales")["d"].iloc[0]
    assert (gaps["last_day"] == latest).all()
    span = (gaps["last_day"] - gaps["first_day"]).dt.days + 1
    assert (gaps["days"] == span).all()
    totals = warehouse.query(
        "SELECT (SELECT sum(quantity) FROM marts.fct_sales_daily) AS fct, (SELECT sum(quantity) FROM raw.sales) AS raw"
    )
    assert totals["fct"].iloc[0] == totals["raw"].iloc[0]


def test_new_landing_file_loads_incrementally(tmp_path, small_demo):
    landing = shutil.copytree(small_demo.out_dir / "landing", tmp_path / "landing")
    settings = settings_for(tmp_path, landing)
    assert run_job(settings, "ingest_and_warehouse").success
    before = warehouse_summary(settings)
    late = landing / "sales" / "zz_late_delivery.csv"
    late.write_text(
        "order_id,order_date,product_id,quantity,unit_price,customer_id\n"
        f"LATE-1,1999-12-31,{_a_product(settings)},4,10.0,\n"
    )
    assert run_job(settings, "ingest_and_warehouse").success
    after = warehouse_summary(settings)
    assert after["raw.sales"] == before["raw.sales"] + 1
    warehouse = Warehouse.from_settings(settings)
    first_day = warehouse.query("SELECT min(sales_date) AS d FROM marts.fct_sales_daily")["d"].iloc[0]
    assert str(first_day)[:10] == "1999-12-31"


def _a_product(settings) -> str:
    return Warehouse.from_settings(settings).query("SELECT min(product_id) AS p FROM raw.products")["p"].iloc[0]


@pytest.mark.postgres
def test_postgres_gives_the_same_row_counts_as_duckdb(tmp_path, small_demo, pg_dsn, duckdb_runs):
    settings, first, second, counts, counts_again = _materialize_twice(
        tmp_path, small_demo, target="postgres", pg_dsn=pg_dsn
    )
    _assert_pipeline_is_complete(settings, first, counts, small_demo)
    assert second.success and counts_again == counts
    assert counts == duckdb_runs[3]


def test_missing_sources_are_skipped_not_fatal(tmp_path):
    empty_landing = tmp_path / "landing"
    empty_landing.mkdir()
    settings = settings_for(tmp_path, empty_landing)
    result = run_job(settings, "ingest_and_warehouse")
    assert result.success
    summaries = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata.get("summary")
        for e in result.get_asset_materialization_events()
    }
    assert "no landing folder" in summaries["raw/sales"].value
    assert warehouse_summary(settings)["marts.fct_sales_daily"] == 0


def test_failing_error_expectation_blocks_downstream(tmp_path, small_demo):
    """A stricter raw_sales suite (every quantity must be 1) fails with error severity: dbt must not run."""
    suites = shutil.copytree(Path(__file__).parents[2] / "expectations", tmp_path / "suites")
    suite_file = suites / "raw_sales.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "quantity", "min_value": 1, "max_value": 1},
            "severity": "critical",
        }
    )
    suite_file.write_text(json.dumps(suite))
    settings = settings_for(tmp_path, small_demo.out_dir / "landing", expectations_dir=suites)
    result = run_job(settings, "ingest_and_warehouse")
    checks = check_results(result)
    assert checks["raw/sales/expectations_raw_sales"] is False
    done = materialized(result)
    assert "raw/sales" in done
    assert "staging/stg_sales" not in done and "marts/fct_sales_daily" not in done
