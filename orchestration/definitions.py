"""The Optimum code location. `build_definitions` takes explicit settings so tests can build isolated graphs."""

from __future__ import annotations

import dagster as dg
import yaml

from optimum.settings import K8S_EXECUTOR_CONFIG, Settings, Target
from orchestration.assets.ingest import ingest_assets
from orchestration.assets.leads import lead_assets, lead_checks
from orchestration.assets.ml import ml_assets
from orchestration.assets.monitoring import build_monitoring_assets
from orchestration.assets.operations import operations_assets
from orchestration.assets.warehouse import build_warehouse_assets
from orchestration.automation import (
    alert_on_run_failure,
    automation_sensor,
    ingest_landing_job,
    landing_sensor,
    monthly_retrain_schedule,
    refresh_monitoring_job,
    retrain_job,
    retrain_on_evidence,
)
from orchestration.checks import expectation_checks
from orchestration.dbt import dbt_cli, ensure_manifest
from orchestration.jobs import backup_schedule, jobs, schedules
from orchestration.mlflow_resource import MlflowTracking
from orchestration.warehouse import Warehouse


def build_definitions(settings: Settings) -> dg.Definitions:
    settings.ensure_dirs()
    ensure_manifest(settings)
    return dg.Definitions(
        assets=[
            *ingest_assets,
            build_warehouse_assets(),
            *ml_assets,
            *lead_assets,
            *build_monitoring_assets(settings),
            *operations_assets,
        ],
        asset_checks=[*expectation_checks, *lead_checks],
        jobs=[*jobs, ingest_landing_job, retrain_job, refresh_monitoring_job],
        schedules=[*schedules, monthly_retrain_schedule, backup_schedule(settings.backup_cron)],
        sensors=[landing_sensor, automation_sensor, retrain_on_evidence, alert_on_run_failure],
        executor=step_executor(settings),
        resources={
            "settings": settings,
            "warehouse": Warehouse.from_settings(settings),
            "dbt": dbt_cli(),
            "mlflow_tracking": MlflowTracking(settings),
        },
    )


def step_executor(settings: Settings) -> dg.ExecutorDefinition:
    """How a run executes its steps: one process (DuckDB), subprocesses (PostgreSQL), or Kubernetes Jobs."""
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(yaml.safe_load(K8S_EXECUTOR_CONFIG.read_text()))
    # DuckDB takes one writer per file, so embedded runs execute steps one at a time in one process.
    if settings.target is Target.DUCKDB:
        return dg.in_process_executor
    # Dagster's default start method spawns a fresh interpreter per step, and each one spends ~20 CPU seconds
    # importing this module; refresh_everything has 25 steps. A forkserver that imported it once forks them.
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": [__name__]}}}, name="multiprocess"
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings())
