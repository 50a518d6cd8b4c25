"""Ingest group: landing files and scraped leads into the warehouse's raw schema."""

from dataclasses import asdict

import dagster as dg

from optimum.settings import Settings
from orchestration.freshness import DAILY
from orchestration.landing.contract import LANDING_SOURCES, PLACE_RESULTS, PRODUCTS, Source
from orchestration.landing.load import LoadReport, load_leads, load_source
from orchestration.landing.predictions import load_prediction_log
from orchestration.landing.raw_tables import qualified, quarantine_table
from orchestration.scraper.crawler import CrawlPolicy, CrawlStats, crawl
from orchestration.scraper.places import PlacesPolicy, PlacesStats, search_places
from orchestration.warehouse import Warehouse

INGEST_GROUP = "ingest"
WAREHOUSE_WRITES_POOL = "optimum_warehouse_writes"
"""Dagster concurrency pool of every step that writes the warehouse (ingestion and dbt). The instance limits
it to one slot (dagster.yaml `concurrency.pools.default_limit`), so an overlapping run waits for the slot."""


def raw_asset_key(source_name: str) -> dg.AssetKey:
    """Matches dagster-dbt's default key for dbt source `raw.<table>`, so lineage connects by itself."""
    return dg.AssetKey(["raw", source_name])


def _count_table(title: str, counts: dict) -> dg.MetadataValue:
    rows = "\n".join(f"| {key} | {count} |" for key, count in sorted(counts.items())) or "| (none) | 0 |"
    return dg.MetadataValue.md(f"| {title} | rows |\n|---|---|\n{rows}")


def _report_metadata(report: LoadReport, warehouse: Warehouse, table: str) -> dict:
    waiting = warehouse.query(
        f"SELECT reason, count(*) AS n FROM {quarantine_table(table)} WHERE resolved_load_id IS NULL GROUP BY reason"  # noqa: S608 -- quarantine table names come from the code
    )
    return {
        "summary": report.summary,
        "files_seen": report.files_seen,
        "files_loaded": report.files_loaded[:50],
        "files_already_loaded": len(report.files_skipped),
        "files_unreadable": len(report.files_unreadable),
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "rows_corrected": report.rows_corrected,
        "rows_resolved_from_quarantine": report.rows_resolved,
        "quarantine_by_reason": _count_table("reason", dict(report.quarantined_by_reason)),
        "quarantine_by_file": _count_table("file", dict(report.quarantined_by_file.most_common(50))),
        "dagster/row_count": warehouse.row_count(qualified(table)),
        "quarantine_waiting": int(waiting["n"].sum()),
        "quarantine_waiting_by_reason": _count_table("reason", dict(zip(waiting["reason"], waiting["n"], strict=True))),
    }


def _quarantine_rate_check(report: LoadReport, warn_rate: float) -> dg.AssetCheckResult:
    """Warns (never blocks: bad rows are already set aside) when a delivery quarantines too much of itself."""
    worst = sorted(report.deliveries, key=lambda d: d.quarantine_rate, reverse=True)
    over = [d for d in worst if d.quarantine_rate > warn_rate]
    rows = "\n".join(
        f"| {d.name} | {d.rows_loaded} | {d.rows_quarantined} | {d.quarantine_rate:.1%} |" for d in worst[:50]
    )
    return dg.AssetCheckResult(
        check_name="quarantine_rate",
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "threshold": warn_rate,
            "deliveries": len(report.deliveries),
            "deliveries_over_threshold": [d.name for d in over[:50]],
            "max_rate": worst[0].quarantine_rate if worst else 0.0,
            "per_delivery": dg.MetadataValue.md(
                f"| file | loaded | quarantined | rate |\n|---|---|---|---|\n{rows or '| (no new delivery) | | | |'}"
            ),
        },
    )


def build_landing_asset(source: Source) -> dg.AssetsDefinition:
    """One asset per landing folder; sales and interactions wait for products to know valid product ids."""
    deps = [raw_asset_key(PRODUCTS.name)] if "product_id" in source.columns and source is not PRODUCTS else []

    key = raw_asset_key(source.name)

    @dg.asset(
        key=key,
        group_name=INGEST_GROUP,
        deps=deps,
        kinds={"python", "csv"},
        freshness_policy=DAILY,
        pool=WAREHOUSE_WRITES_POOL,
        description=f"Validated rows of landing/{source.name}/*; bad rows go to raw.{source.quarantine_table}.",
        check_specs=[
            dg.AssetCheckSpec(
                "quarantine_rate",
                asset=key,
                description="Warns when a new delivery quarantines more than OPTIMUM_LANDING_QUARANTINE_WARN_RATE.",
            )
        ],
    )
    def _landing_asset(
        context: dg.AssetExecutionContext,
        settings: dg.ResourceParam[Settings],
        warehouse: dg.ResourceParam[Warehouse],
    ) -> dg.MaterializeResult:
        report = load_source(warehouse, settings.landing_dir, source, settings.landing)
        context.log.info(report.summary)
        return dg.MaterializeResult(
            metadata=_report_metadata(report, warehouse, source.raw_table),
            check_results=[_quarantine_rate_check(report, settings.landing.quarantine_warn_rate)],
        )

    return _landing_asset


def _skipped_source(
    context: dg.AssetExecutionContext, warehouse: Warehouse, table: str, reason: str
) -> dg.MaterializeResult:
    """A lead source left unconfigured still materializes (empty), saying why in its metadata."""
    context.log.warning(f"{reason}: the {table} source is skipped")
    report = load_leads(warehouse, [], [], table=table)
    return dg.MaterializeResult(metadata={"skipped": reason} | _report_metadata(report, warehouse, table))


def _counters(stats: CrawlStats | PlacesStats) -> dict[str, int | bool | str]:
    """A fetcher's run counters as asset metadata (the per-request fetch log stays in the run's log)."""
    return {name: "" if value is None else value for name, value in asdict(stats).items() if name != "fetch_log"}


@dg.asset(
    key=raw_asset_key("leads"),
    group_name=INGEST_GROUP,
    kinds={"python", "html"},
    pool=WAREHOUSE_WRITES_POOL,
    description="Business leads scraped from the listing sites in OPTIMUM_LEAD_SEED_URLS (robots.txt honoured).",
)
def raw_leads(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
) -> dg.MaterializeResult:
    if not settings.seed_urls:
        return _skipped_source(context, warehouse, "leads", "OPTIMUM_LEAD_SEED_URLS is empty")
    policy = CrawlPolicy(
        max_pages=settings.scrape_max_pages, requests_per_second_per_host=settings.scrape_requests_per_second
    )
    result = crawl(settings.seed_urls, policy)
    report = load_leads(warehouse, result.leads, result.quarantined)
    context.log.info(f"{report.summary}; {result.stats.pages_fetched} pages fetched")
    return dg.MaterializeResult(
        metadata=_counters(result.stats)
        | {"leads_scraped": len(result.leads)}
        | _report_metadata(report, warehouse, "leads")
    )


@dg.asset(
    key=raw_asset_key(PLACE_RESULTS),
    group_name=INGEST_GROUP,
    kinds={"python", "json"},
    description="Businesses found by the Places-style search API (OPTIMUM_PLACES_*), with each record's raw JSON.",
)
def raw_place_results(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
) -> dg.MaterializeResult:
    searches = settings.places_searches
    if not settings.places_api_url:
        return _skipped_source(context, warehouse, PLACE_RESULTS, "OPTIMUM_PLACES_API_URL is empty")
    if not settings.places_api_key.get_secret_value():
        return _skipped_source(context, warehouse, PLACE_RESULTS, "OPTIMUM_PLACES_API_KEY is empty")
    if not searches:
        reason = "no searches: set OPTIMUM_PLACES_AREAS or OPTIMUM_LEAD_TARGET_CITIES"
        return _skipped_source(context, warehouse, PLACE_RESULTS, reason)
    policy = PlacesPolicy(
        max_requests=settings.places_max_requests, requests_per_second=settings.places_requests_per_second
    )
    result = search_places(settings.places_api_url, settings.places_api_key.get_secret_value(), searches, policy)
    report = load_leads(warehouse, result.leads, result.quarantined, table=PLACE_RESULTS)
    if result.stats.stopped_reason:
        context.log.warning(f"Places API run stopped early: {result.stats.stopped_reason}")
    context.log.info(f"{report.summary}; {result.stats.requests_made} API requests")
    return dg.MaterializeResult(
        metadata=_counters(result.stats)
        | {"searches": len(searches), "places_found": len(result.leads)}
        | _report_metadata(report, warehouse, PLACE_RESULTS)
    )


@dg.asset(
    key=raw_asset_key("prediction_log"),
    group_name=INGEST_GROUP,
    kinds={"python", "bentoml"},
    freshness_policy=DAILY,
    description="The serving API's answers from landing/prediction_log/ (closed spool files), one row per item.",
)
def raw_prediction_log(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
) -> dg.MaterializeResult:
    report = load_prediction_log(warehouse, settings.landing_dir)
    context.log.info(report.summary)
    return dg.MaterializeResult(metadata=_report_metadata(report, warehouse, "prediction_log"))


landing_assets = [build_landing_asset(source) for source in LANDING_SOURCES]
ingest_assets = [*landing_assets, raw_leads, raw_place_results, raw_prediction_log]
