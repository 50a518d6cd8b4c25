"""Models trained from the warehouse: MLflow runs, registry aliases, promotion, batch outputs; then the embedded
restore drill on the same trained state. The postgres target trains in tests/integration/test_backup_drill.py
(whose drill needs that state anyway)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest
import yaml
from mlflow import MlflowClient

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from orchestration.warehouse import Warehouse
from tests.integration.drill import recorded_run, restore_drill, use
from tests.integration.pipeline import check_results, materialized, run_job, settings_for

pytestmark = pytest.mark.integration

HORIZON = 4
RECS_TOP_N = 5


def _ml_settings(tmp, demo, **values):
    return settings_for(
        tmp,
        demo.out_dir / "landing",
        forecast_horizon=HORIZON,
        forecast_prophet_top_n=2,  # Prophet is slow: two series keep it in the graph without the wait
        recs_top_n=RECS_TOP_N,
        **values,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_demo):
    """Two runs of the whole graph on the same data: the second must train and register nothing.

    The runs are recorded in the state's own Dagster instance, so the last test of this module can take the
    state through the restore drill (which gives it back as it was)."""
    tmp = tmp_path_factory.mktemp("ml")
    settings = _ml_settings(tmp, small_demo, backup_dir=tmp / "backups")
    settings.ensure_dirs()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(settings.dagster_home))
        first = recorded_run(settings, "refresh_everything")
        second = recorded_run(settings, "refresh_everything")
    return settings, first, second


def _champion(settings, name):
    return MlflowClient(settings.tracking_uri).get_model_version_by_alias(name, "champion")


def test_training_registers_and_promotes_the_first_models(trained):
    settings, first, _ = trained
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    assert {"recommender", "demand_forecaster", "marts/recommendations", "marts/demand_forecast"} <= materialized(first)
    checks = check_results(first)
    assert checks["recommender/beats_popularity"] is True
    assert checks["demand_forecaster/beats_seasonal_naive"] is True
    assert checks["recommender/promoted_to_champion"] is True
    for name in (RECOMMENDER_MODEL_NAME, FORECASTER_MODEL_NAME):
        champion = _champion(settings, name)
        assert str(champion.version) == "1"
        assert champion.tags["promotion.decision"] == "promoted"


def test_unchanged_data_registers_nothing_and_says_so(trained):
    settings, _, second = trained
    assert second.success
    checks = check_results(second)
    assert checks["recommender/promoted_to_champion"] is True
    assert checks["demand_forecaster/promoted_to_champion"] is True
    assert checks["recommender/beats_popularity"] is True, "the stored evaluation answers the guard"
    outcomes = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata["outcome"].value
        for e in second.get_asset_materialization_events()
        if e.asset_key.to_user_string() in ("recommender", "demand_forecaster")
    }
    assert outcomes == {"recommender": "unchanged", "demand_forecaster": "unchanged"}
    client = MlflowClient(settings.tracking_uri)
    for name in (RECOMMENDER_MODEL_NAME, FORECASTER_MODEL_NAME):
        assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]
        assert str(_champion(settings, name).version) == "1"


def test_mlflow_runs_have_nested_candidates_metrics_and_figures(trained):
    settings = trained[0]
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("optimum")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    recommender_run = next(r for r in parents if r.info.run_name == "recommender")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == recommender_run.info.run_id]
    assert {r.data.params["candidate"] for r in children} >= {"popularity", "itemknn", "svd", "ials", "ease"}
    assert all("ndcg_at_10" in r.data.metrics for r in children)
    artifacts = {a.path for a in client.list_artifacts(recommender_run.info.run_id)}
    assert "ndcg_by_candidate.png" in artifacts
    forecaster_run = next(r for r in parents if r.info.run_name == "demand_forecaster")
    figures = {"mase_by_model.png", "backtest.png", "feature_importance.png"}
    assert figures <= {a.path for a in client.list_artifacts(forecaster_run.info.run_id)}
    assert recommender_run.inputs.dataset_inputs, "the training data snapshot is logged"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development", "the UI opens on the runs"
    forecaster_children = {
        r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == forecaster_run.info.run_id
    }
    assert forecaster_children["prophet"].data.params["top_n"] == "2"
    assert forecaster_children["prophet"].data.tags["scored_on"].startswith("only "), "a subset says so"
    assert forecaster_children["seasonal_naive"].data.tags["scored_on"].startswith("all ")
    assert forecaster_children["lightgbm"].data.params["n_estimators"] == "200"
    for name in (RECOMMENDER_MODEL_NAME, FORECASTER_MODEL_NAME):
        model_dir = Path(urlparse(client.get_model_version_download_uri(name, "1")).path)
        mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
        assert mlmodel["signature"]["inputs"] and mlmodel["signature"]["params"]
        assert (model_dir / mlmodel["saved_input_example_info"]["artifact_path"]).exists()


def test_batch_outputs_cover_every_user_and_product(trained):
    settings = trained[0]
    warehouse = Warehouse.from_settings(settings)
    recs = warehouse.query("SELECT * FROM marts.recommendations")
    assert list(recs.columns) == ["user_id", "product_id", "rank", "score", "model_name", "model_version"]
    users = warehouse.query("SELECT DISTINCT user_id FROM marts.user_item_scores")
    assert set(recs["user_id"]) == set(users["user_id"])
    assert recs.groupby("user_id")["rank"].max().max() == RECS_TOP_N
    seen = warehouse.query(
        "SELECT count(*) AS n FROM marts.recommendations r JOIN marts.user_item_scores s "
        "ON r.user_id = s.user_id AND r.product_id = s.product_id"
    )
    assert seen["n"].iloc[0] == 0, "recommendations exclude items the user already interacted with"
    forecast = warehouse.query("SELECT * FROM marts.demand_forecast")
    assert list(forecast.columns) == [
        "product_id",
        "forecast_date",
        "yhat",
        "yhat_lower",
        "yhat_upper",
        "model_name",
        "model_version",
    ]
    sold = warehouse.query("SELECT DISTINCT product_id FROM marts.fct_sales_daily WHERE quantity > 0")
    assert set(forecast["product_id"]) == set(sold["product_id"])
    assert (forecast.groupby("product_id").size() == HORIZON).all()
    last_sale = warehouse.query("SELECT max(sales_date) AS d FROM marts.fct_sales_daily")["d"].iloc[0]
    assert forecast["forecast_date"].min() <= last_sale + timedelta(days=7)
    assert forecast["forecast_date"].min() > last_sale - timedelta(days=7)
    insights = warehouse.query("SELECT * FROM marts.forecast_insights")
    assert {"product_id", "insight_type", "details", "model_version"} <= set(insights.columns)


def test_asset_metadata_links_the_mlflow_run_and_previews_the_batch_outputs(trained):
    settings, first, _ = trained
    metadata = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in first.get_asset_materialization_events()
    }
    for asset in ("recommender", "demand_forecaster"):
        link = metadata[asset]["mlflow_run"]
        assert isinstance(link, dg.UrlMetadataValue), "a clickable link in the Dagster UI"
        run = MlflowClient(settings.tracking_uri).get_run(link.value.rsplit("/", 1)[1])
        assert run.info.run_name == asset
        assert link.value == f"{settings.mlflow_ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    warehouse = Warehouse.from_settings(settings)
    for table in ("recommendations", "demand_forecast", "forecast_insights"):
        output = metadata[f"marts/{table}"]
        assert output["dagster/row_count"].value == warehouse.row_count(f"marts.{table}") > 0
        assert isinstance(output["preview"], dg.MarkdownMetadataValue) and output["preview"].value.startswith("|")


def test_training_skips_cleanly_without_data(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    result = run_job(settings_for(tmp_path, landing))
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    skipped = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata.get("skipped")
        for e in result.get_asset_materialization_events()
    }
    assert "no interactions" in skipped["recommender"].value
    assert "no sales" in skipped["demand_forecaster"].value


def test_restore_drill_embedded(trained, monkeypatch, capsys):
    """Last in the module: it destroys the trained state and restores it from its backup."""
    settings = trained[0]
    use(monkeypatch, settings, settings.dagster_home)
    restore_drill(settings, lambda: shutil.rmtree(settings.home), settings, capsys)
