"""Jobs and schedules: the daily ingest + warehouse refresh, the weekly refresh of everything, the nightly backup."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.ingest import INGEST_GROUP
from orchestration.assets.operations import OPERATIONS_GROUP
from orchestration.dbt import WAREHOUSE_GROUP

ingest_and_warehouse_job = dg.define_asset_job(
    "ingest_and_warehouse",
    selection=dg.AssetSelection.groups(INGEST_GROUP, WAREHOUSE_GROUP),
    description="Load new landing files and scraped leads, then rebuild and test the dbt warehouse.",
)
refresh_everything_job = dg.define_asset_job(
    "refresh_everything",
    # The weekly forecast snapshots are partitioned: their latest week follows by automation, past weeks by backfill.
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets(["monitoring", "forecast_snapshots"])
    - dg.AssetSelection.groups(OPERATIONS_GROUP),
    description="Materialize the whole graph: ingestion, warehouse and everything downstream of it.",
)
backup_job = dg.define_asset_job(
    "nightly_backup",
    selection=dg.AssetSelection.groups(OPERATIONS_GROUP),
    description="Back up the warehouse, Dagster's storage and MLflow (orchestration/backup.py).",
)

daily_ingest_schedule = dg.ScheduleDefinition(
    name="daily_ingest", job=ingest_and_warehouse_job, cron_schedule="0 2 * * *", execution_timezone="UTC"
)
weekly_refresh_schedule = dg.ScheduleDefinition(
    name="weekly_refresh", job=refresh_everything_job, cron_schedule="0 4 * * 0", execution_timezone="UTC"
)


def backup_schedule(cron: str) -> dg.ScheduleDefinition:
    """Running from the first deployment on: a backup schedule that someone must remember to turn on is none."""
    return dg.ScheduleDefinition(
        name="nightly_backup",
        job=backup_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


jobs = [ingest_and_warehouse_job, refresh_everything_job, backup_job]
schedules = [daily_ingest_schedule, weekly_refresh_schedule]
