"""Retrain on evidence: demand that shifts after a date breaks the forecast's promise, the accuracy check
fails, an alert asks for a retrain, the retrain sensor requests it and the retrain job runs. Along the way
a backfill over past weekly snapshot partitions completes, and a second backfill recomputes them in place.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from optimum.settings import Settings
from orchestration.alerts import ALERTS
from orchestration.assets.monitoring import SNAPSHOTS, build_monitoring_assets
from orchestration.automation import retrain_on_evidence
from orchestration.definitions import build_definitions
from orchestration.demo.generate import generate_demo_data
from orchestration.warehouse import Warehouse
from tests.integration.pipeline import check_results, materialized, run_job, settings_for

pytestmark = pytest.mark.integration

SHIFT = date(2023, 8, 14)
BEFORE_SHIFT = ["2023-06-26"]  # its 4 forecast weeks end before the shift
ACROSS_SHIFT = ["2023-08-07", "2023-08-14"]


def _materialize(settings: Settings, names: list[str], **kwargs) -> dg.ExecuteInProcessResult:
    assets = [a for a in build_monitoring_assets(settings) if a.key.path[-1] in names]
    resources = {"settings": settings, "warehouse": Warehouse.from_settings(settings)}
    return dg.materialize(assets, resources=resources, raise_on_error=False, **kwargs)


def _backfill(settings: Settings, first: str, last: str) -> dg.ExecuteInProcessResult:
    """What a single-run backfill over [first, last] launches."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return _materialize(settings, ["forecast_snapshots"], tags=tags)


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    root = tmp_path_factory.mktemp("shifted")
    # 12 weeks after the shift, so the retrain has post-shift weeks to learn from: with 8, its held-out MASE
    # tied seasonal naive's (1.9486 against 1.9485) and passed only as LightGBM's threads happened to sum.
    demo = generate_demo_data(
        root / "demo", scale="small", seed=3, start=date(2023, 1, 2), days=308, demand_shift=(SHIFT, 3.0)
    )
    settings = settings_for(
        root, demo.out_dir / "landing", snapshot_start=date(2023, 1, 2), forecast_horizon=4, forecast_prophet_top_n=0
    )
    assert run_job(settings, "ingest_and_warehouse").success
    return settings


def test_backfill_of_past_snapshot_weeks_completes_and_recomputes_in_place(shifted):
    warehouse = Warehouse.from_settings(shifted)
    for first, last in ((BEFORE_SHIFT[0], BEFORE_SHIFT[0]), (ACROSS_SHIFT[0], ACROSS_SHIFT[-1])):
        assert _backfill(shifted, first, last).success
    counts = warehouse.query(f"SELECT as_of, count(*) AS n FROM {SNAPSHOTS} GROUP BY as_of ORDER BY as_of")
    assert [str(d.date()) for d in counts["as_of"]] == BEFORE_SHIFT + ACROSS_SHIFT
    assert _backfill(shifted, BEFORE_SHIFT[0], BEFORE_SHIFT[0]).success  # again: replaced, not appended
    again = warehouse.query(f"SELECT as_of, count(*) AS n FROM {SNAPSHOTS} GROUP BY as_of ORDER BY as_of")
    assert again["n"].tolist() == counts["n"].tolist()


def test_shifted_demand_fails_the_accuracy_check_and_retrains(shifted):
    warehouse = Warehouse.from_settings(shifted)
    if not warehouse.table_exists("monitoring", "forecast_snapshots"):
        _backfill(shifted, ACROSS_SHIFT[0], ACROSS_SHIFT[-1])
        _backfill(shifted, BEFORE_SHIFT[0], BEFORE_SHIFT[0])
    result = _materialize(shifted, ["forecast_accuracy"])
    assert result.success
    assert check_results(result) == {"monitoring/forecast_accuracy/accuracy_within_promise": False}
    accuracy = warehouse.query("SELECT * FROM monitoring.forecast_accuracy ORDER BY as_of").set_index("as_of")
    ratio = accuracy["mase"] / accuracy["promised_mase"]
    assert ratio.iloc[0] < shifted.accuracy_max_mase_ratio < ratio.iloc[-1]  # before the shift it kept its promise
    alerts = warehouse.query(f"SELECT * FROM {ALERTS}")
    assert alerts["retrain"].tolist() == [True] and "accuracy_within_promise" in alerts["kind"].iloc[0]

    resources = {"settings": shifted, "warehouse": warehouse}
    context = dg.build_sensor_context(resources=resources)
    request = retrain_on_evidence(context)
    assert isinstance(request, dg.RunRequest) and "accuracy" in request.tags["optimum/retrain_reason"]
    later = dg.build_sensor_context(cursor=context.cursor, resources=resources)
    assert isinstance(retrain_on_evidence(later), dg.SkipReason)  # one retrain per alert

    # The job the sensor launches, limited here to the model whose check failed (the recommender's retrain
    # is exercised by tests/integration/test_ml_pipeline.py).
    job = build_definitions(shifted).resolve_job_def(retrain_on_evidence.job_name)
    forecaster = [dg.AssetKey("demand_forecaster")] + [
        dg.AssetKey(["marts", name]) for name in ("demand_forecast", "forecast_insights")
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        retrain = job.execute_in_process(instance=instance, asset_selection=forecaster, raise_on_error=False)
    assert retrain.success
    assert {"demand_forecaster", "marts/demand_forecast"} <= materialized(retrain)
