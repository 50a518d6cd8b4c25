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
    RECENT,
    ALSRecommender,
    BlendRecommender,
    EASERecommender,
    IALSRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recency,
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


def default_recommender_candidates() -> dict[str, Recommender | list[Recommender]]:
    """Popularity, neighbourhood, factor and linear models; a list is a hyperparameter grid whose first entry
    is also the one every recency is tried with (select_recommender).

    The seed's factor sizes were chosen on a validation split of the demo data (bench/tune_recommenders.py):
    a few hundred products want few, well-regularized factors; the grids now let a bigger or older log pick
    more. EASE runs on the binary matrix (Steck's setting); iALS on a grid after Rendle et al. 2021
    (dimension, regularization and the weight of unobserved pairs tuned together)."""
    return {
        "popularity": PopularityRecommender(),
        "itemknn": ItemKNNRecommender(),
        "svd": [SVDRecommender(n_components=8), SVDRecommender(n_components=32)],
        "als": ALSRecommender(factors=16, regularization=10.0, alpha=40.0),
        "ease": [EASERecommender(l2=500.0), EASERecommender(l2=100.0), EASERecommender(l2=2000.0)],
        "ials": [
            IALSRecommender(factors=64, regularization=1.0, alpha=10.0),
            *(
                IALSRecommender(factors=factors, regularization=regularization, alpha=alpha)
                for factors in (32, 128)
                for regularization in (1.0, 20.0)
                for alpha in (5.0, 40.0)
            ),
        ],
    }


def recommender_spec(model: Recommender, recency: Recency | None = None) -> dict:
    """Class and constructor arguments, recursively for blends, and the recency its scores were built
    with: enough to rebuild the design unfitted and refit it on new events."""
    if isinstance(model, BlendRecommender):
        members = [recommender_spec(member) for member in model.models]
        params = {"models": members, "weights": model.weights, "normalization": model.normalization}
    else:
        params = dict(model.params)
    cls = type(model)
    spec = {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params}
    return spec | ({"recency": recency.as_dict()} if recency is not None else {})


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
    model: Recommender  # refit on all events' scores under `recency`: what gets served
    recency: Recency
    scores: pd.DataFrame  # the user x item scores `model` was refit on (scores_from_events)
    candidates: pd.DataFrame  # one row per candidate and baseline: validation and test metrics
    grid: pd.DataFrame  # every configuration and recency tried on validation
    baseline: str  # the stronger popularity on the test part
    counts: dict[str, int]  # what the split left aside (split_counts)
    evaluation: Evaluation


def train_recommender(
    events: pd.DataFrame, candidates: dict[str, Recommender | list[Recommender]] | None = None
) -> RecommenderTraining:
    """Choose model, configuration and recency on a validation split nested in the training part, report
    them on the test part, then refit the choice on every event's scores under the chosen recency."""
    events = events[EVENT_COLUMNS]
    selection = select_recommender(candidates or default_recommender_candidates(), events)
    scores = scores_from_events(events, selection.recency)
    chosen = selection.model.clone().fit(scores)
    evaluation = Evaluation(
        metric=RECOMMENDER_METRIC,
        value=float(selection.metrics.loc[selection.key, RECOMMENDER_METRIC]),
        higher_is_better=True,
        data_fingerprint=frame_fingerprint(events),
        config=config_json(recommender_spec(selection.model, selection.recency)),
    )
    return RecommenderTraining(
        key=selection.key,
        model=chosen,
        recency=selection.recency,
        scores=scores,
        candidates=selection.metrics,
        grid=selection.grid,
        baseline=selection.baseline,
        counts=selection.counts,
        evaluation=evaluation,
    )


def rescore_recommender(config: str, events: pd.DataFrame) -> float:
    """NDCG@10 of a stored configuration on this data's test part: the champion's score on the same evaluation.

    A configuration stored before recency was a hyperparameter was fitted on the seed's mart: RECENT."""
    spec = json.loads(config)
    recency = Recency(**spec["recency"]) if "recency" in spec else RECENT
    train_events, test_events = temporal_split(events[EVENT_COLUMNS])
    model = recommender_from_spec(spec)
    return float(evaluate(model, scores_from_events(train_events, recency), test_events)[RECOMMENDER_METRIC])


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
    calendar: str = "auto",
) -> ForecasterTraining:
    """Backtest every model, choose one per demand class, forecast the horizon and derive the insights."""
    result = forecast_demand(
        daily_sales, products, freq=freq, horizon=horizon, prophet_top_n=prophet_top_n, calendar=calendar
    )
    insights = demand_insights(result.forecast, products, result.history, freq=freq)
    held_out = result.held_out.set_index("model")
    evaluation = Evaluation(
        metric=FORECASTER_METRIC,  # the served choice on the origin neither the choice nor the intervals saw
        value=float(held_out.loc["chosen", "mase"]) if "chosen" in held_out.index else float("nan"),
        higher_is_better=False,
        data_fingerprint=frame_fingerprint(daily_sales[["product_id", "sales_date", "quantity"]]),
        config=config_json(
            {"freq": freq, "horizon": horizon, "prophet_top_n": prophet_top_n, "calendar": result.calendar.rule}
        ),
    )
    return ForecasterTraining(result, insights, evaluation)
