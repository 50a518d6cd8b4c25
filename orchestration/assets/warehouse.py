"""Warehouse group: every dbt model and snapshot is an asset, every dbt test an asset check.

Each materialization carries the table's row count and its columns with the types the warehouse gave
them (DuckDB or PostgreSQL) and the descriptions from the dbt YAML, so the asset page shows what the
table holds.
"""

import json

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from optimum.settings import Settings
from orchestration.assets.ingest import WAREHOUSE_WRITES_POOL
from orchestration.dbt import OptimumDbtTranslator, dbt_environment, dbt_project
from orchestration.warehouse import Warehouse


def build_warehouse_assets() -> dg.AssetsDefinition:
    """Built on demand because it reads manifest.json, which `ensure_manifest` may have to create first."""

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=OptimumDbtTranslator(),
        pool=WAREHOUSE_WRITES_POOL,
    )
    def warehouse_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        settings: dg.ResourceParam[Settings],
        warehouse: dg.ResourceParam[Warehouse],
    ):
        with dbt_environment(settings):
            invocation = dbt.cli(["build", "--vars", json.dumps(settings.dbt_vars())], context=context)
        # DuckDB admits one process per file, so the tables are read once dbt has exited.
        events = list(invocation.stream())
        for event in events:
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                described = context.assets_def.metadata_by_key[key].get("dagster/column_schema")  # dbt YAML
                event = event.with_metadata({**event.metadata, **_table_metadata(warehouse, key, described)})
            yield event

    return warehouse_models


def _table_metadata(warehouse: Warehouse, key: dg.AssetKey, described: dg.TableSchema | None) -> dict:
    """Row count and column schema of the built table; column descriptions come from the dbt YAML."""
    table = ".".join(key.path)
    descriptions = {column.name: column.description for column in described.columns} if described else {}
    columns = [
        dg.TableColumn(name, data_type, description=descriptions.get(name))
        for name, data_type in warehouse.column_types(table).items()
    ]
    return {
        "dagster/row_count": warehouse.row_count(table),
        "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
    }
