"""Ingest group: landing files and scraped leads into the warehouse's raw schema."""

import dagster as dg

from optimum.settings import Settings
from orchestration.landing.contract import LANDING_SOURCES, PRODUCTS, Source
from orchestration.landing.load import LoadReport, load_leads, load_source
from orchestration.landing.raw_tables import qualified, quarantine_table
from orchestration.scraper.crawler import CrawlPolicy, crawl
from orchestration.warehouse import Warehouse

INGEST_GROUP = "ingest"


def raw_asset_key(source_name: str) -> dg.AssetKey:
    """Matches dagster-dbt's default key for dbt source `raw.<table>`, so lineage connects by itself."""
    return dg.AssetKey(["raw", source_name])


def _report_metadata(report: LoadReport, warehouse: Warehouse, table: str) -> dict:
    reasons = sorted(report.quarantined_by_reason.items())
    reason_rows = "\n".join(f"| {reason} | {count} |" for reason, count in reasons) or "| (none) | 0 |"
    return {
        "summary": report.summary,
        "files_seen": report.files_seen,
        "files_loaded": report.files_loaded[:50],
        "files_already_loaded": len(report.files_skipped),
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "quarantine_by_reason": dg.MetadataValue.md(f"| reason | rows |\n|---|---|\n{reason_rows}"),
        "dagster/row_count": warehouse.row_count(qualified(table)),
        "quarantine_table_rows": warehouse.row_count(quarantine_table(table)),
    }


def build_landing_asset(source: Source) -> dg.AssetsDefinition:
    """One asset per landing folder; sales and interactions wait for products to know valid product ids."""
    deps = [] if source is PRODUCTS else [raw_asset_key(PRODUCTS.name)]

    @dg.asset(
        key=raw_asset_key(source.name),
        group_name=INGEST_GROUP,
        deps=deps,
        kinds={"python", "csv"},
        description=f"Validated rows of landing/{source.name}/*; bad rows go to raw.{source.quarantine_table}.",
    )
    def _landing_asset(
        context: dg.AssetExecutionContext,
        settings: dg.ResourceParam[Settings],
        warehouse: dg.ResourceParam[Warehouse],
    ) -> dg.MaterializeResult:
        report = load_source(warehouse, settings.landing_dir, source)
        context.log.info(report.summary)
        return dg.MaterializeResult(metadata=_report_metadata(report, warehouse, source.raw_table))

    return _landing_asset


@dg.asset(
    key=raw_asset_key("leads"),
    group_name=INGEST_GROUP,
    kinds={"python", "html"},
    description="Business leads scraped from the listing sites in OPTIMUM_LEAD_SEED_URLS (robots.txt honoured).",
)
def raw_leads(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
) -> dg.MaterializeResult:
    if not settings.seed_urls:
        context.log.warning("OPTIMUM_LEAD_SEED_URLS is empty: no leads scraped")
        report = load_leads(warehouse, [], [])
        return dg.MaterializeResult(
            metadata={"skipped": "OPTIMUM_LEAD_SEED_URLS is empty"} | _report_metadata(report, warehouse, "leads")
        )
    policy = CrawlPolicy(
        max_pages=settings.scrape_max_pages, requests_per_second_per_host=settings.scrape_requests_per_second
    )
    result = crawl(settings.seed_urls, policy)
    report = load_leads(warehouse, result.leads, result.quarantined)
    context.log.info(f"{report.summary}; {result.stats.pages_fetched} pages fetched")
    crawl_metadata = {
        "pages_fetched": result.stats.pages_fetched,
        "requests_made": result.stats.requests_made,
        "retries": result.stats.retries,
        "pages_skipped_by_robots": result.stats.pages_skipped_by_robots,
        "budget_exhausted": result.stats.budget_exhausted,
        "leads_scraped": len(result.leads),
    }
    return dg.MaterializeResult(metadata=crawl_metadata | _report_metadata(report, warehouse, "leads"))


landing_assets = [build_landing_asset(source) for source in LANDING_SOURCES]
ingest_assets = [*landing_assets, raw_leads]
