"""ML group: train and promote the recommender and the demand forecaster, write their batch outputs.

Each training asset reads marts, calls ml/, logs one MLflow run (nested runs per candidate, figures, the
data snapshot), registers the chosen model as `challenger` and promotes it to `champion` only when it beats
the champion on the same evaluation.
"""

import dagster as dg
import mlflow
import pandas as pd

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME, ForecastPackage, RecommenderPackage
from ml.recommend import BASELINES
from ml.registry import PromotionDecision, champion_version, promote_if_better, register_challenger
from ml.reports import backtest_plot, feature_importance_plot, metric_by_candidate
from ml.training import (
    RECOMMENDER_METRIC,
    recommender_spec,
    rescore_recommender,
    train_forecaster,
    train_recommender,
)
from optimum.settings import Settings
from orchestration.mlflow_resource import MlflowTracking
from orchestration.warehouse import Warehouse

ML_GROUP = "ml"
EXPERIMENT = "optimum"


def mart(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def _markdown(frame: pd.DataFrame, digits: int = 4) -> dg.MetadataValue:
    numeric = frame.select_dtypes("number").columns
    return dg.MetadataValue.md(frame.round(dict.fromkeys(numeric, digits)).to_markdown())


def _promotion_metadata(decision: PromotionDecision) -> dict:
    return {
        "challenger_version": decision.challenger_version,
        "champion_version": decision.challenger_version if decision.promote else str(decision.champion_version),
        "promoted": decision.promote,
        "promotion_reason": decision.reason,
    }


def _check_specs(asset_name: str, baseline: str) -> list[dg.AssetCheckSpec]:
    """Guards written by the training asset itself: beating the baseline blocks the batch outputs."""
    key = dg.AssetKey(asset_name)
    return [
        dg.AssetCheckSpec(f"beats_{baseline}", asset=key, blocking=True, description=f"chosen model beats {baseline}"),
        dg.AssetCheckSpec("promoted_to_champion", asset=key, description="the challenger became the champion"),
    ]


def _check_results(
    asset_name: str, baseline: str, beats: bool, comparison: dict, decision: PromotionDecision
) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=asset_name, check_name=f"beats_{baseline}", passed=bool(beats), metadata=comparison
        ),
        dg.AssetCheckResult(
            asset_key=asset_name,
            check_name="promoted_to_champion",
            passed=decision.promote,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reason": decision.reason, "champion_before": str(decision.champion_version)},
        ),
    ]


def _skipped(asset_name: str, baseline: str, reason: str) -> dg.MaterializeResult:
    """Nothing to train on: say so, and report the guards as warnings rather than leave them unanswered."""
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


def _metric_names(metrics: dict) -> dict:
    """MLflow metric names may not contain '@' (ndcg@10 -> ndcg_at_10)."""
    return {str(name).replace("@", "_at_"): float(value) for name, value in metrics.items()}


def _log_snapshot(frame: pd.DataFrame, name: str) -> None:
    """The exact rows a model was trained on, as an MLflow dataset input (schema, digest, row count)."""
    mlflow.log_input(mlflow.data.from_pandas(frame, name=name), context="training")


@dg.asset(
    group_name=ML_GROUP,
    deps=[mart("fct_interactions"), mart("user_item_scores"), mart("dim_products")],
    kinds={"python", "mlflow"},
    check_specs=_check_specs("recommender", "popularity"),
)
def recommender(
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[Warehouse],
    mlflow_tracking: dg.ResourceParam[MlflowTracking],
) -> dg.MaterializeResult:
    """Choose model, settings and recency on a validation split nested in the training part (NDCG@10), report
    them on the test part against the stronger of all-time and recent popularity, and register the choice."""
    events = warehouse.query("SELECT * FROM marts.fct_interactions")
    if events.empty:
        context.log.warning("marts.fct_interactions is empty: no recommender trained")
        return _skipped("recommender", "popularity", "no interactions in the warehouse")
    products = warehouse.query("SELECT * FROM marts.dim_products")
    training = train_recommender(events)
    scores = training.scores
    metrics = training.candidates.drop(columns=["model", "params", "recency"]).astype(float)
    with mlflow_tracking.start_run(EXPERIMENT, "recommender") as run:
        mlflow.log_params({"chosen": training.key, "candidates": ",".join(map(str, metrics.index))})
        mlflow.log_params({"users": scores["user_id"].nunique(), "items": scores["product_id"].nunique()})
        mlflow.log_params({f"recency_{key}": value for key, value in training.recency.as_dict().items()})
        for key, row in metrics.iterrows():
            with mlflow.start_run(run_name=str(key), nested=True):
                mlflow.log_params({"candidate": key, **training.candidates.loc[key, "params"]})
                mlflow.log_metrics(_metric_names(row.dropna().to_dict()))
        mlflow.log_metrics(_metric_names({f"chosen_{k}": v for k, v in metrics.loc[training.key].items()}))
        mlflow.log_figure(metric_by_candidate(metrics, RECOMMENDER_METRIC, training.key), "ndcg_by_candidate.png")
        mlflow.log_dict(recommender_spec(training.model, training.recency), "model_spec.json")
        mlflow.log_table(training.grid.astype({"params": str}), "validation_grid.json")
        _log_snapshot(scores, "user_item_scores")
        package = RecommenderPackage(training.model, products, training.key)
        version = register_challenger(package, RECOMMENDER_MODEL_NAME, training.evaluation)
        champion = champion_version(RECOMMENDER_MODEL_NAME)
        rescored = None
        if champion and champion[1] and champion[1].data_fingerprint != training.evaluation.data_fingerprint:
            rescored = rescore_recommender(champion[1].config, events)
        decision = promote_if_better(RECOMMENDER_MODEL_NAME, version, training.evaluation, rescored)
        mlflow.set_tags({"promotion.decision": str(decision.promote), "promotion.reason": decision.reason})
        link = mlflow_tracking.run_link(run)
    context.log.info(f"recommender v{version}: {decision.reason}")
    chosen, baseline = metrics.loc[training.key, RECOMMENDER_METRIC], metrics.loc[training.baseline, RECOMMENDER_METRIC]
    comparison = {
        "chosen_ndcg@10": float(chosen),
        "baseline": training.baseline,
        "baseline_ndcg@10": float(baseline),
        **{f"{key}_ndcg@10": float(metrics.loc[key, RECOMMENDER_METRIC]) for key in BASELINES},
    }
    return dg.MaterializeResult(
        check_results=_check_results("recommender", "popularity", chosen > baseline, comparison, decision),
        metadata={
            "summary": f"{training.key} ({training.recency.label}): test ndcg@10 {chosen:.4f} "
            f"(stronger popularity, {training.baseline}: {baseline:.4f}); v{version}: " + decision.reason,
            "mlflow_run": dg.MetadataValue.url(link),  # first after the summary: the way to the run's details
            "chosen": training.key,
            "recency": training.recency.label,
            RECOMMENDER_METRIC: float(chosen),
            "metrics_by_candidate": _markdown(training.candidates.drop(columns="params")),
            **{f"count_{key}": value for key, value in training.counts.items()},
            **_promotion_metadata(decision),
        },
    )


@dg.asset(
    group_name=ML_GROUP,
    deps=[mart("fct_sales_daily"), mart("dim_products")],
    kinds={"python", "mlflow"},
    check_specs=_check_specs("demand_forecaster", "seasonal_naive"),
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
        context.log.warning("marts.fct_sales_daily is empty: no forecaster trained")
        return _skipped("demand_forecaster", "seasonal_naive", "no sales in the warehouse")
    products = warehouse.query("SELECT * FROM marts.dim_products")
    training = train_forecaster(
        daily,
        products,
        settings.forecast_freq,
        settings.forecast_horizon,
        settings.forecast_prophet_top_n,
        settings.forecast_calendar,
    )
    result = training.result
    metrics = result.metrics.set_index("model").drop(columns="n_series").astype(float)
    held_out = result.held_out.set_index("model")
    with mlflow_tracking.start_run(EXPERIMENT, "demand_forecaster") as run:
        mlflow.log_params(
            {"freq": result.freq, "horizon": result.horizon, "series": result.history["product_id"].nunique()}
        )
        for model, row in metrics.iterrows():
            with mlflow.start_run(run_name=str(model), nested=True):
                mlflow.log_param("model", model)
                mlflow.log_metrics(_metric_names(row.dropna().to_dict()))
        mlflow.log_metric("chosen_held_out_mase", training.evaluation.value)
        coverage = held_out["coverage"].dropna()
        mlflow.log_metrics({f"held_out_coverage_{model}": value for model, value in coverage.items()})
        mlflow.log_figure(metric_by_candidate(metrics, "mase"), "mase_by_model.png")
        top = result.history.groupby("product_id")["quantity"].sum().nlargest(3).index.tolist()
        mlflow.log_figure(backtest_plot(result.backtest.predictions, top, list(metrics.index)), "backtest.png")
        if len(result.feature_importance):
            title = "LightGBM global model: feature importance (final fit)"
            mlflow.log_figure(feature_importance_plot(result.feature_importance, title), "feature_importance.png")
        mlflow.log_table(result.selection, "selection.json")
        _log_snapshot(daily, "fct_sales_daily")
        package = ForecastPackage(result.forecast, training.insights, products, result.freq)
        version = register_challenger(package, FORECASTER_MODEL_NAME, training.evaluation)
        decision = promote_if_better(FORECASTER_MODEL_NAME, version, training.evaluation)
        mlflow.set_tags({"promotion.decision": str(decision.promote), "promotion.reason": decision.reason})
        link = mlflow_tracking.run_link(run)
    context.log.info(f"demand forecaster v{version}: {decision.reason}")
    baseline = float(held_out.loc["seasonal_naive", "mase"])
    comparison = {"chosen_held_out_mase": training.evaluation.value, "seasonal_naive_held_out_mase": baseline}
    beats = training.evaluation.value < baseline
    return dg.MaterializeResult(
        check_results=_check_results("demand_forecaster", "seasonal_naive", beats, comparison, decision),
        metadata={
            "summary": f"held-out MASE {training.evaluation.value:.4f} (seasonal naive {baseline:.4f}); "
            f"v{version}: " + decision.reason,
            "mlflow_run": dg.MetadataValue.url(link),
            "chosen_mase": training.evaluation.value,
            "metrics_by_model": _markdown(metrics),
            "choice_by_demand_class": _markdown(_choice_by_class(result.selection)),
            "thin_history_series": int(result.selection["thin_history"].sum()),
            "short_history_series": int((result.selection["short_history"] & ~result.selection["thin_history"]).sum()),
            "held_out_by_model": _markdown(held_out),
            **result.calendar.as_metadata(),
            **_promotion_metadata(decision),
        },
    )


def _choice_by_class(selection: pd.DataFrame) -> pd.DataFrame:
    """The model serving each demand class, and how many series it covers."""
    return selection.groupby("demand_class").agg(model=("model_name", "first"), series=("product_id", "size"))


def _champion(name: str, mlflow_tracking: MlflowTracking):
    mlflow_tracking.activate()
    current = champion_version(name)
    if current is None:
        return None, None
    return mlflow.pyfunc.load_model(f"models:/{name}@champion").unwrap_python_model(), current[0]


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
    recs = package.recommend_many(users, settings.recs_top_n)
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
