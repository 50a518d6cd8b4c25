"""Every answer is logged with its lineage, lands in raw.prediction_log, and `optimum trace` follows it.

The champions are registered by a real Dagster run (a small asset that logs the serving test packages
through `MlflowTracking.start_run`, as the training assets do), so the chain request -> model version ->
MLflow run -> Dagster run -> data snapshot is the one production writes.
"""

from __future__ import annotations

import shutil

import dagster as dg
import httpx
import mlflow
import pytest

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from optimum.settings import Settings
from orchestration.assets.ml import lineage_tags
from orchestration.landing.predictions import load_prediction_log
from orchestration.mlflow_resource import MlflowTracking
from orchestration.trace import trace_request
from orchestration.warehouse import Warehouse
from tests.serving_fixtures import (
    forecast_package,
    forecast_tables,
    recommender_package,
    running_server,
    server_env,
    synthetic_daily_sales,
    synthetic_products,
    synthetic_scores,
)

DATA_AS_OF = "1996-12-29"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Settings of a home whose champions a Dagster run registered; the run's id."""
    root = tmp_path_factory.mktemp("lineage")
    settings = Settings(home=root / "home", landing_dir=root / "landing")
    settings.ensure_dirs()
    (settings.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    products, scores = synthetic_products(), synthetic_scores()
    forecast, insights = forecast_tables(products, synthetic_daily_sales())

    @dg.asset
    def champions(context):
        experiment = MlflowTracking(settings).experiment_id("optimum")  # also points mlflow at the store
        for name, package in (
            (RECOMMENDER_MODEL_NAME, recommender_package(products, scores)),
            (FORECASTER_MODEL_NAME, forecast_package(products, forecast, insights)),
        ):
            with mlflow.start_run(experiment_id=experiment, run_name=name, tags=lineage_tags(context, DATA_AS_OF)):
                mlflow.log_input(mlflow.data.from_pandas(scores, name="user_item_scores"), context="training")
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=package, registered_model_name=name, pip_requirements=[]
                )
            mlflow.MlflowClient().set_registered_model_alias(name, "champion", str(info.registered_model_version))
        tags = lineage_tags(context, DATA_AS_OF)
        with mlflow.start_run(experiment_id=experiment, run_name="challenger", tags=tags):  # a second version
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=recommender_package(products, scores),
                registered_model_name=RECOMMENDER_MODEL_NAME,
                pip_requirements=[],
            )
        mlflow.MlflowClient().set_registered_model_alias(
            RECOMMENDER_MODEL_NAME, "challenger", str(info.registered_model_version)
        )

    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        result = dg.materialize([champions], instance=instance)
    assert result.success
    return settings, result.run_id


@pytest.fixture(scope="module")
def answers(trained, tmp_path_factory):
    settings, _ = trained
    env = server_env(
        settings.home,
        settings.tracking_uri,
        OPTIMUM_LANDING_DIR=str(settings.landing_dir),
        OPTIMUM_SERVING_REFRESH_SECONDS="0",
        OPTIMUM_SERVING_AB_CHALLENGER_SHARE="0.5",
    )
    calls = [
        ("/recommend", {"user_id": "U001", "count": 3}),
        ("/similar_items", {"product_id": "P002", "count": 2}),
        ("/forecast", {"product_id": "P003", "horizon": 2}),
    ]
    with running_server(env, tmp_path_factory.mktemp("logs") / "server.log", timeout=300) as server:
        answers = [httpx.post(server.url + route, json=body, timeout=30) for route, body in calls]
        users = [f"U{i:03d}" for i in range(1, 31)] + [f"new-user-{i}" for i in range(30)]
        arms = {}
        for _ in range(2):
            for user in users:
                body = httpx.post(server.url + "/recommend", json={"user_id": user, "count": 2}, timeout=30).json()
                arms.setdefault(user, set()).add((body["variant"], body["model_version"]))
        return answers, arms


def test_every_answer_carries_its_lineage(trained, answers):
    _, dagster_run_id = trained
    for response in answers[0]:
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["request_id"]) == 32 and body["variant"] in ("champion", "challenger")
        lineage = body["lineage"]
        assert lineage["model_version"] == body["model_version"]
        assert lineage["dagster_run_id"] == dagster_run_id
        assert lineage["data_as_of"] == DATA_AS_OF
        assert lineage["mlflow_run_id"]


def test_ab_arms_are_stable_per_user_and_served_by_their_own_versions(answers):
    _, arms = answers
    assert all(len(seen) == 1 for seen in arms.values()), "a user changed arms"
    served = {arm for (arm,) in arms.values()}
    assert {variant for variant, _ in served} == {"champion", "challenger"}
    assert len({version for _, version in served}) == 2  # each arm its own model version


@pytest.mark.parametrize("target", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_answers_land_in_the_prediction_log_and_trace_end_to_end(
    trained, answers, target, tmp_path, request, monkeypatch
):
    trained_settings, dagster_run_id = trained
    landing = shutil.copytree(trained_settings.landing_dir, tmp_path / "landing")  # each target loads its own
    settings = Settings(home=tmp_path, landing_dir=landing, mlflow_tracking_uri=trained_settings.tracking_uri)
    if target == "postgres":
        settings = settings.model_copy(update={"target": "postgres", "pg_dsn": request.getfixturevalue("pg_dsn")})
    warehouse = Warehouse.from_settings(settings)
    report = load_prediction_log(warehouse, landing)
    assert report.rows_loaded == 3 + 2 + 2 + 120 * 2 and report.rows_quarantined == 0
    log = warehouse.query("SELECT * FROM raw.prediction_log ORDER BY requested_at, rank")
    recommend = answers[0][0].json()
    rows = log[log["request_id"] == recommend["request_id"]]
    assert rows["item_id"].tolist() == [item["product_id"] for item in recommend["items"]]
    assert rows["caller_id"].iloc[0] == "U001" and rows["endpoint"].iloc[0] == "/recommend"
    assert load_prediction_log(warehouse, landing).rows_loaded == 0  # a second load adds nothing

    forecast = answers[0][2].json()
    variants = warehouse.query("SELECT DISTINCT variant FROM raw.prediction_log")["variant"]
    assert set(variants) == {"champion", "challenger"}
    monkeypatch.setenv("DAGSTER_HOME", str(trained_settings.dagster_home))  # the instance that trained them
    lines = "\n".join(trace_request(settings, forecast["request_id"]))
    assert forecast["request_id"] in lines and "raw.prediction_log" in lines
    assert f"{FORECASTER_MODEL_NAME} version {forecast['model_version']}" in lines
    assert forecast["lineage"]["mlflow_run_id"] in lines
    assert f"dagster run {dagster_run_id}: job __ephemeral_asset_job__, SUCCESS" in lines, lines
    assert f"as of {DATA_AS_OF}" in lines and "user_item_scores (digest" in lines
