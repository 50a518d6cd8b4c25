"""What runs by itself: new landing files start the ingest, the warehouse and batch outputs follow by
declarative automation, evidence (a failed accuracy or drift check) starts a retrain, and a monthly
schedule retrains anyway as a floor.

No home-made scheduler: Dagster's daemon evaluates the sensors and the automation conditions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from optimum.settings import Settings
from orchestration.alerts import raise_alert, retrain_alerts_after
from orchestration.assets.ingest import raw_asset_key
from orchestration.assets.monitoring import MONITORING_GROUP
from orchestration.dbt import WAREHOUSE_GROUP
from orchestration.landing.contract import LANDING_SOURCES
from orchestration.landing.predictions import SOURCE as PREDICTION_LOG
from orchestration.warehouse import Warehouse

WATCHED_FOLDERS = (*(source.name for source in LANDING_SOURCES), PREDICTION_LOG)
SETTLE_SECONDS = 1.0  # a file younger than this is left for the next tick (its directory entry may be mid-rename)

ingest_landing_job = dg.define_asset_job(
    "ingest_landing",
    selection=dg.AssetSelection.assets(*(raw_asset_key(name) for name in WATCHED_FOLDERS)),
    description="Load new landing files and closed spool files (interactions, prediction log) into raw.",
)
retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.assets("recommender", "demand_forecaster").downstream(),
    description="Train both models (promotion still goes through the champion gate), then their batch outputs.",
)
refresh_monitoring_job = dg.define_asset_job(
    "refresh_monitoring",
    selection=dg.AssetSelection.groups(WAREHOUSE_GROUP, MONITORING_GROUP)
    - dg.AssetSelection.assets(["monitoring", "forecast_snapshots"]),
    description="Rebuild the warehouse and the unpartitioned monitoring assets (what automation does after ingest).",
)
monthly_retrain_schedule = dg.ScheduleDefinition(
    name="monthly_retrain",
    job=retrain_job,
    cron_schedule="0 3 1 * *",
    execution_timezone="UTC",
    description="The floor: retrain once a month even when no check asked for it.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dataclass(frozen=True)
class LandingCursor:
    """The newest inode-change time ingested, and the files that share it.

    ctime (not mtime) because a closed spool file keeps the mtime of its last write but gets a new
    ctime when it is renamed into view, and a copied file cannot carry an old ctime along."""

    ctime_ns: int = 0
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        value = json.loads(text)
        return cls(int(value["ctime_ns"]), tuple(value["names"]))

    def serialize(self) -> str:
        return json.dumps({"ctime_ns": self.ctime_ns, "names": list(self.names)})


def new_landing_files(
    landing_dir: Path, cursor: LandingCursor, now: float | None = None
) -> tuple[list[str], LandingCursor]:
    """Files (folder/name) that appeared since `cursor` in the watched folders, and the cursor after them.

    Open spool files (dot files) are never listed; a file changed less than SETTLE_SECONDS ago waits."""
    settle_before = int(((time.time() if now is None else now) - SETTLE_SECONDS) * 1e9)
    found: list[tuple[int, str]] = []
    for folder in WATCHED_FOLDERS:
        directory = Path(landing_dir) / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            ctime = path.stat().st_ctime_ns
            name = f"{folder}/{path.name}"
            if ctime > settle_before:
                continue
            if ctime > cursor.ctime_ns or (ctime == cursor.ctime_ns and name not in cursor.names):
                found.append((ctime, name))
    if not found:
        return [], cursor
    newest = max(ctime for ctime, _ in found)
    ties = [name for ctime, name in found if ctime == newest]
    names = tuple(sorted(ties + (list(cursor.names) if newest == cursor.ctime_ns else [])))
    return sorted(name for _, name in found), LandingCursor(newest, names)


@dg.sensor(
    job=ingest_landing_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the ingest when products/, sales/, interactions/ or prediction_log/ get new closed files.",
)
def landing_sensor(context: dg.SensorEvaluationContext, settings: dg.ResourceParam[Settings]):
    files, cursor = new_landing_files(settings.landing_dir, LandingCursor.parse(context.cursor))
    if not files:
        return dg.SkipReason(f"no new files in {settings.landing_dir}")
    context.update_cursor(cursor.serialize())
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return dg.RunRequest(run_key=f"landing-{cursor.ctime_ns}", tags={"optimum/new_files": shown[:1000]})


automation_sensor = dg.AutomationConditionSensorDefinition(
    "declarative_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the assets' automation conditions (the warehouse and batch outputs follow ingest).",
)


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains when a forecast-accuracy or drift check failed (its alert row asks for a retrain).",
)
def retrain_on_evidence(
    context: dg.SensorEvaluationContext, settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]
):
    handled = int(context.cursor or 0)
    alerts = retrain_alerts_after(warehouse, handled)
    if alerts.empty:
        return dg.SkipReason("no failed accuracy or drift check since the last retrain request")
    newest = int(alerts["alert_id"].max())
    context.update_cursor(str(newest))
    reasons = ", ".join(sorted(set(alerts["kind"])))
    return dg.RunRequest(run_key=f"retrain-after-alert-{newest}", tags={"optimum/retrain_reason": reasons[:200]})


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes an alert row (and posts the webhook) for every failed run.",
)
def alert_on_run_failure(
    context: dg.RunFailureSensorContext, settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]
):
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    raise_alert(settings, warehouse, "run_failed", f"{run.job_name} run {run.run_id}", message)
