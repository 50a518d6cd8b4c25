"""Training entry points: warehouse frames in, a chosen model with its evidence out (no tracking, no I/O).

Dagster assets, notebooks and tests call these; MLflow logging and registry live in ml.registry / the
orchestration layer.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass

import pandas as pd

from ml.forecast.insights import demand_insights
from ml.forecast.pipeline import ForecastResult, forecast_demand
from ml.recommend import (
    ALSRecommender,
    BlendRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
    SVDRecommender,
    evaluate,
    scores_from_events,
    select_recommender,
    temporal_split,
)
from ml.registry import Evaluation, config_json, frame_fingerprint

RECOMMENDER_METRIC = "ndcg@10"
FORECASTER_METRIC = "mase"
EVENT_COLUMNS = ["event_id", "user_id", "product_id", "interaction_type", "event_at"]


def default_recommender_candidates() -> dict[str, Recommender]:
    """Popularity (the baseline and cold-start answer), neighbourhood, factor and linear models.

    The factor models' sizes were chosen on a validation split nested inside the training part of the demo
    data (bench/tune_recommenders.py, BENCHMARKS.md): a few hundred products want few, well-regularized
    factors; the library defaults (64 of each) scored below popularity there."""
    return {
        "popularity": PopularityRecommender(),
        "itemknn": ItemKNNRecommender(),
        "svd": SVDRecommender(n_components=8),
        "als": ALSRecommender(factors=16, regularization=10.0, alpha=40.0),
        "ease": EASERecommender(),
    }


def recommender_spec(model: Recommender) -> dict:
    """Class and constructor arguments, recursively for blends: enough to rebuild the design unfitted."""
    if isinstance(model, BlendRecommender):
        members = [recommender_spec(member) for member in model.models]
        params = {"models": members, "weights": model.weights, "normalization": model.normalization}
    else:
        params = dict(model.params)
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params}


def recommender_from_spec(spec: dict) -> Recommender:
    module, _, name = spec["class"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    params = dict(spec["params"])
    if "models" in params:
        params["models"] = [recommender_from_spec(member) for member in params["models"]]
    return cls(**params)


@dataclass
class RecommenderTraining:
    key: str  # the chosen candidate (or blend)
    model: Recommender  # refit on all scores: what gets served
    candidates: pd.DataFrame  # one metrics row per candidate on the shared split
    evaluation: Evaluation


def train_recommender(
    events: pd.DataFrame, scores: pd.DataFrame, candidates: dict[str, Recommender] | None = None
) -> RecommenderTraining:
    """Pick the best candidate on a per-user temporal split of `events`, then refit it on `scores`."""
    selection = select_recommender(candidates or default_recommender_candidates(), events[EVENT_COLUMNS])
    chosen = recommender_from_spec(recommender_spec(selection.model)).fit(scores)
    evaluation = Evaluation(
        metric=RECOMMENDER_METRIC,
        value=float(selection.metrics.loc[selection.key, RECOMMENDER_METRIC]),
        higher_is_better=True,
        data_fingerprint=frame_fingerprint(events[EVENT_COLUMNS]),
        config=config_json(recommender_spec(selection.model)),
    )
    return RecommenderTraining(selection.key, chosen, selection.metrics, evaluation)


def rescore_recommender(config: str, events: pd.DataFrame) -> float:
    """NDCG@10 of a stored configuration on this data's split: the champion's score on the same evaluation."""
    train_events, test_events = temporal_split(events[EVENT_COLUMNS])
    model = recommender_from_spec(json.loads(config))
    return float(evaluate(model, scores_from_events(train_events), test_events)[RECOMMENDER_METRIC])


@dataclass
class ForecasterTraining:
    result: ForecastResult
    insights: pd.DataFrame
    evaluation: Evaluation


def train_forecaster(
    daily_sales: pd.DataFrame,
    products: pd.DataFrame,
    freq: str,
    horizon: int,
    prophet_top_n: int | None = 50,
    n_origins: int = 3,
) -> ForecasterTraining:
    """Backtest every model over `n_origins` rolling origins, choose one per demand class, forecast the
    horizon and derive the insights."""
    result = forecast_demand(
        daily_sales, products, freq=freq, horizon=horizon, prophet_top_n=prophet_top_n, n_origins=n_origins
    )
    insights = demand_insights(result.forecast, products, result.history, freq=freq)
    chosen = result.selection[~result.selection["thin_history"]]
    evaluation = Evaluation(
        metric=FORECASTER_METRIC,
        value=float(chosen["mase"].mean()) if chosen["mase"].notna().any() else float("nan"),
        higher_is_better=False,
        data_fingerprint=frame_fingerprint(daily_sales[["product_id", "sales_date", "quantity"]]),
        config=config_json({"freq": freq, "horizon": horizon, "prophet_top_n": prophet_top_n}),
    )
    return ForecasterTraining(result, insights, evaluation)
