"""Warehouse group: every dbt model and snapshot is an asset, every dbt test an asset check."""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from optimum.settings import Settings
from orchestration.dbt import OptimumDbtTranslator, dbt_environment, dbt_project
from orchestration.warehouse import Warehouse


def build_warehouse_assets() -> dg.AssetsDefinition:
    """Built on demand because it reads manifest.json, which `ensure_manifest` may have to create first."""

    @dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=OptimumDbtTranslator())
    def warehouse_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        settings: dg.ResourceParam[Settings],
        warehouse: dg.ResourceParam[Warehouse],
    ):
        with dbt_environment(settings):
            invocation = dbt.cli(["build"], context=context)
        # DuckDB admits one process per file, so row counts are read once dbt has exited.
        events = list(invocation.stream())
        for event in events:
            if isinstance(event, dg.Output):
                table = ".".join(context.asset_key_for_output(event.output_name).path)
                event = event.with_metadata({**event.metadata, "dagster/row_count": warehouse.row_count(table)})
            yield event

    return warehouse_models
