"""ML group: train and promote the recommender and the demand forecaster, write their batch outputs.

Each training asset reads marts and hands `ml.training.publish` a job: it trains inside one MLflow run
(nested runs per candidate, figures, the data snapshot), registers the chosen model as `challenger` and
promotes it to `champion` only when it beats the champion on the same evaluation. Unchanged data,
configuration and code train nothing and register nothing: the asset reports "unchanged".
"""

import dagster as dg
import pandas as pd

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from ml.recommend import Scoring
from ml.registry import DAGSTER_ASSET_TAG, DAGSTER_RUN_TAG, DATA_AS_OF_TAG
from ml.training import (
    FORECASTER_BASELINE,
    Published,
    TrainingJob,
    forecaster_job,
    publish,
    recommender_job,
)
from optimum.settings import Settings
from orchestration.mlflow_resource import MlflowTracking
from orchestration.warehouse import Warehouse

ML_GROUP = "ml"
EXPERIMENT = "optimum"
RECOMMENDER_BASELINE = "popularity"  # the stronger of all-time and recent popularity (ml.recommend.BASELINES)


def mart(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def _markdown(frame: pd.DataFrame, digits: int = 4) -> dg.MetadataValue:
    numeric = frame.select_dtypes("number").columns
    return dg.MetadataValue.md(frame.round(dict.fromkeys(numeric, digits)).to_markdown())


def _check_specs(asset_name: str, baseline: str) -> list[dg.AssetCheckSpec]:
    """Guards written by the training asset itself: beating the baseline blocks the batch outputs."""
    key = dg.AssetKey(asset_name)
    return [
        dg.AssetCheckSpec(f"beats_{baseline}", asset=key, blocking=True, description=f"chosen model beats {baseline}"),
        dg.AssetCheckSpec(
            "promoted_to_champion",
            asset=key,
            description="the challenger became the champion, or nothing changed since the last training",
        ),
    ]


def _skipped(context: dg.AssetExecutionContext, asset_name: str, baseline: str, reason: str) -> dg.MaterializeResult:
    """Nothing to train on: say so, and report the guards as warnings rather than leave them unanswered."""
    context.log.warning(f"{asset_name} not trained: {reason}")
    checks = [
        dg.AssetCheckResult(
            asset_key=asset_name,
            check_name=name,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"skipped": reason},
        )
        for name in (f"beats_{baseline}", "promoted_to_champion")
    ]
    return dg.MaterializeResult(metadata={"skipped": reason}, check_results=checks)


def lineage_tags(context: dg.AssetExecutionContext, data_as_of) -> dict[str, str]:
    """MLflow run tags naming the Dagster run and asset that trained a model and its data's latest date."""
    return {
        DAGSTER_RUN_TAG: context.run.run_id,
        DAGSTER_ASSET_TAG: context.asset_key.to_user_string(),
        DATA_AS_OF_TAG: str(data_as_of),
    }


def dagster_run_ended(context: dg.AssetExecutionContext):
    """Whether a Dagster run of this instance has ended or is gone: then an MLflow run it left RUNNING is
    abandoned (publish marks the versions it registered; see ml.registry.abandoned_versions)."""

    def ended(run_id: str) -> bool:
        run = context.instance.get_run_by_id(run_id)
        return run is None or run.is_finished

    return ended


def _train(
    context: dg.AssetExecutionContext,
    asset_name: str,
    baseline: str,
    job: TrainingJob,
    tracking: MlflowTracking,
    data_as_of,
) -> dg.MaterializeResult:
    """Publish the job and turn what happened into the asset's metadata and check results. The run is tagged
    with the Dagster run and asset that trained it and the data's latest date, so every served answer leads
    back here (and the `mlflow_run` link leads the other way)."""
    experiment_id = tracking.experiment_id(EXPERIMENT)
    published: Published = publish(
        job, tracking.registry, experiment_id, lineage_tags(context, data_as_of), dagster_run_ended(context)
    )
    decision, evaluation = published.decision, published.evaluation
    context.log.info(f"{job.name} v{published.version}: {decision.reason}")
    comparison = {
        f"chosen_{evaluation.metric}": evaluation.value,
        f"{evaluation.baseline}_{evaluation.metric}": evaluation.baseline_value,
    }
    checks = [
        dg.AssetCheckResult(
            asset_key=asset_name,
            check_name=f"beats_{baseline}",
            passed=evaluation.beats_baseline,
            metadata=comparison,
        ),
        dg.AssetCheckResult(
            asset_key=asset_name,
            check_name="promoted_to_champion",
            passed=decision.outcome != "kept",
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "outcome": decision.outcome,
                "reason": decision.reason,
                "champion_before": str(decision.champion_version),
            },
        ),
    ]
    summary = published.trained.summary if published.trained else {}
    metadata = {
        "summary": f"{evaluation.metric} {evaluation.value:.4f} ({evaluation.baseline} "
        f"{evaluation.baseline_value:.4f}); v{published.version} {decision.outcome}: {decision.reason}",
    }
    if published.run_id:  # first after the summary: the way to the run's details
        metadata["mlflow_run"] = dg.MetadataValue.url(tracking.run_link(experiment_id, published.run_id))
    metadata |= {
        evaluation.metric: evaluation.value,
        "version": published.version,
        "champion_version": str(decision.champion_after),
        "outcome": decision.outcome,
        "promotion_reason": decision.reason,
        **{key: _markdown(value) if isinstance(value, pd.DataFrame) else value for key, value in summary.items()},
    }
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


@dg.asset(
    group_name=ML_GROUP,
    deps=[mart("fct_interactions"), mart("user_item_scores"), mart("dim_products")],
    kinds={"python", "mlflow"},
    check_specs=_check_specs("recommender", RECOMMENDER_BASELINE),
)
def recommender(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
    mlflow_tracking: dg.ResourceParam[MlflowTracking],
) -> dg.MaterializeResult:
    """Choose model, settings and recency on a validation split nested in the training part (NDCG@10), report
    them on the test part against the stronger of all-time and recent popularity, and register the choice."""
    events = warehouse.query("SELECT * FROM marts.fct_interactions")
    if events.empty:
        return _skipped(context, "recommender", RECOMMENDER_BASELINE, "no interactions in the warehouse")
    products = warehouse.query("SELECT * FROM marts.dim_products")
    job = recommender_job(events, products, Scoring.from_settings(settings))
    return _train(context, "recommender", RECOMMENDER_BASELINE, job, mlflow_tracking, events["event_at"].max())


@dg.asset(
    group_name=ML_GROUP,
    deps=[mart("fct_sales_daily"), mart("dim_products")],
    kinds={"python", "mlflow"},
    check_specs=_check_specs("demand_forecaster", FORECASTER_BASELINE),
)
def demand_forecaster(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
    mlflow_tracking: dg.ResourceParam[MlflowTracking],
) -> dg.MaterializeResult:
    """Backtest seasonal naive, moving average, Prophet, LightGBM and an ensemble; pick one per demand class."""
    daily = warehouse.query("SELECT * FROM marts.fct_sales_daily")
    if daily.empty:
        return _skipped(context, "demand_forecaster", FORECASTER_BASELINE, "no sales in the warehouse")
    products = warehouse.query("SELECT * FROM marts.dim_products")
    job = forecaster_job(
        daily,
        products,
        settings.forecast_freq,
        settings.forecast_horizon,
        settings.forecast_prophet_top_n,
        settings.forecast_calendar,
        settings.forecast_workers,
    )
    return _train(context, "demand_forecaster", FORECASTER_BASELINE, job, mlflow_tracking, daily["sales_date"].max())


def _champion(name: str, mlflow_tracking: MlflowTracking):
    """The champion's python model and version, loaded as one: the version named is the version loaded."""
    registry = mlflow_tracking.registry
    current = registry.champion(name)
    if current is None:
        return None, None
    return registry.load(name, current.version), current.version


@dg.asset(key=mart("recommendations"), group_name=ML_GROUP, deps=[recommender], kinds={"python", "duckdb"})
def recommendations(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
    mlflow_tracking: dg.ResourceParam[MlflowTracking],
) -> dg.MaterializeResult:
    """Top OPTIMUM_RECS_TOP_N unseen items for every user with history, from the champion recommender."""
    package, version = _champion(RECOMMENDER_MODEL_NAME, mlflow_tracking)
    if package is None:
        return dg.MaterializeResult(metadata={"skipped": "no champion recommender registered"})
    users = warehouse.query("SELECT DISTINCT user_id FROM marts.user_item_scores")["user_id"].tolist()
    recs = package.recommender.recommend(users, settings.recs_top_n)
    recs = recs[["user_id", "product_id", "rank", "score"]].assign(model_name=package.candidate, model_version=version)
    warehouse.replace_table("marts.recommendations", recs)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(recs),
            "users": len(users),
            "model_version": version,
            "preview": _markdown(recs.head(10)),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(mart("demand_forecast"), group_name=ML_GROUP, deps=[demand_forecaster], kinds={"python"}),
        dg.AssetSpec(mart("forecast_insights"), group_name=ML_GROUP, deps=[demand_forecaster], kinds={"python"}),
    ]
)
def forecast_outputs(warehouse: dg.ResourceParam[Warehouse], mlflow_tracking: dg.ResourceParam[MlflowTracking]):
    """The champion forecaster's full-horizon forecast and insights, written back to the warehouse."""
    package, version = _champion(FORECASTER_MODEL_NAME, mlflow_tracking)
    if package is None:
        for key in (mart("demand_forecast"), mart("forecast_insights")):
            yield dg.MaterializeResult(asset_key=key, metadata={"skipped": "no champion forecaster registered"})
        return
    forecast = package.forecast.assign(model_version=version)[
        ["product_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_name", "model_version"]
    ]
    insights = package.insights.assign(model_version=version)
    warehouse.replace_table("marts.demand_forecast", forecast)
    warehouse.replace_table("marts.forecast_insights", insights)
    counts = insights["insight_type"].value_counts().to_dict()
    yield dg.MaterializeResult(
        asset_key=mart("demand_forecast"),
        metadata={
            "dagster/row_count": len(forecast),
            "model_version": version,
            "preview": _markdown(forecast.head(10)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=mart("forecast_insights"),
        metadata={"dagster/row_count": len(insights), "by_type": counts, "preview": _markdown(insights.head(10))},
    )


ml_assets = [recommender, demand_forecaster, recommendations, forecast_outputs]
