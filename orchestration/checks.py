"""Great Expectations suites as blocking Dagster asset checks: an error-severity failure stops downstream."""

import dagster as dg

from optimum.settings import Settings
from orchestration.assets.ingest import raw_asset_key
from orchestration.quality.expectations import validate_frame
from orchestration.warehouse import Warehouse

# suite name -> (asset it guards, warehouse table it reads)
GUARDED_TABLES: dict[str, tuple[dg.AssetKey, str]] = {
    "raw_sales": (raw_asset_key("sales"), "raw.sales"),
    "raw_interactions": (raw_asset_key("interactions"), "raw.interactions"),
    "raw_leads": (raw_asset_key("leads"), "raw.leads"),
    "dim_products": (dg.AssetKey(["marts", "dim_products"]), "marts.dim_products"),
    "fct_sales_daily": (dg.AssetKey(["marts", "fct_sales_daily"]), "marts.fct_sales_daily"),
    "user_item_scores": (dg.AssetKey(["marts", "user_item_scores"]), "marts.user_item_scores"),
}


def build_expectation_check(suite_name: str, asset_key: dg.AssetKey, table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name=f"expectations_{suite_name}",
        blocking=True,
        description=f"Great Expectations suite expectations/{suite_name}.json on {table}.",
    )
    def _check(settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]) -> dg.AssetCheckResult:
        frame = warehouse.query(f"SELECT * FROM {table}")  # noqa: S608 -- table names come from the code's own suite list
        result = validate_frame(frame, suite_name, directory=settings.expectations_dir)
        return dg.AssetCheckResult(
            passed=result.n_failed == 0,
            severity=dg.AssetCheckSeverity.ERROR if result.n_failed_errors else dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_evaluated": result.rows_evaluated,
                "expectations": result.n_expectations,
                "failed_errors": result.n_failed_errors,
                "failed_warnings": result.n_failed_warnings,
                "results": dg.MetadataValue.md(result.to_markdown()),
            },
        )

    return _check


expectation_checks = [build_expectation_check(name, key, table) for name, (key, table) in GUARDED_TABLES.items()]
