"""Jobs and schedules: the daily ingest + warehouse refresh and the weekly refresh of everything."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.ingest import INGEST_GROUP
from orchestration.dbt import WAREHOUSE_GROUP

ingest_and_warehouse_job = dg.define_asset_job(
    "ingest_and_warehouse",
    selection=dg.AssetSelection.groups(INGEST_GROUP, WAREHOUSE_GROUP),
    description="Load new landing files and scraped leads, then rebuild and test the dbt warehouse.",
)
refresh_everything_job = dg.define_asset_job(
    "refresh_everything",
    # The weekly forecast snapshots are partitioned: their latest week follows by automation, past weeks by backfill.
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(["monitoring", "forecast_snapshots"]),
    description="Materialize the whole graph: ingestion, warehouse and everything downstream of it.",
)

daily_ingest_schedule = dg.ScheduleDefinition(
    name="daily_ingest", job=ingest_and_warehouse_job, cron_schedule="0 2 * * *", execution_timezone="UTC"
)
weekly_refresh_schedule = dg.ScheduleDefinition(
    name="weekly_refresh", job=refresh_everything_job, cron_schedule="0 4 * * 0", execution_timezone="UTC"
)

jobs = [ingest_and_warehouse_job, refresh_everything_job]
schedules = [daily_ingest_schedule, weekly_refresh_schedule]
