"""Training: warehouse frames in, a chosen model with its evidence out, and the one path that publishes it.

`train_recommender` / `train_forecaster` are pure (no tracking, no I/O): benchmarks and tests call them.
`publish` is the train -> log -> register -> promote path both training assets share: it skips training
when a registered version was trained on the same data, configuration and code ("unchanged"), otherwise
runs the training inside one MLflow run (so the run's duration is the training's), logs the evidence and
the model (with a signature and an input example), registers it as challenger and lets the registry decide
the promotion. `recommender_job` and `forecaster_job` describe the two models for it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from ml.forecast.insights import demand_insights
from ml.forecast.pipeline import ForecastResult, forecast_demand
from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME, ForecastPackage, RecommenderPackage
from ml.recommend import (
    RECENT,
    BlendRecommender,
    EASERecommender,
    IALSRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recency,
    Recommender,
    Scoring,
    SVDRecommender,
    evaluate,
    scores_from_events,
    select_recommender,
    temporal_split,
)
from ml.registry import Evaluation, ModelRegistry, PromotionDecision, config_json, frame_fingerprint
from ml.reports import backtest_plot, feature_importance_plot, metric_by_candidate

RECOMMENDER_METRIC = "ndcg@10"
FORECASTER_METRIC = "mase"
FORECASTER_BASELINE = "seasonal_naive"
EVENT_COLUMNS = ["event_id", "user_id", "product_id", "interaction_type", "event_at"]


def default_recommender_candidates() -> dict[str, Recommender | list[Recommender]]:
    """Popularity, neighbourhood, factor and linear models; a list is a hyperparameter grid whose first entry
    is also the one every recency is tried with (select_recommender).

    The seed's factor sizes were chosen on a validation split of the demo data (bench/tune_recommenders.py):
    a few hundred products want few, well-regularized factors (16 factors, regularization 10, alpha 40: the
    first iALS configuration, tried under every recency); the grids let a bigger or older log pick more.
    EASE runs on the binary matrix (Steck's setting); iALS on a grid after Rendle et al. 2021 (dimension,
    regularization and the weight of unobserved pairs tuned together)."""
    return {
        "popularity": PopularityRecommender(),
        "itemknn": ItemKNNRecommender(),
        "svd": [SVDRecommender(n_components=8), SVDRecommender(n_components=32)],
        "ease": [EASERecommender(l2=500.0), EASERecommender(l2=100.0), EASERecommender(l2=2000.0)],
        "ials": [
            IALSRecommender(factors=16, regularization=10.0, alpha=40.0),
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


# Classes a stored champion's spec may name that were since removed -> (successor, parameters it lacks). The
# home-made ALS gave way to iALS on `implicit` (the same Hu et al. model and CG solver): a champion stored as
# ALS is rescored as iALS with its factors, regularization and alpha, so promotion can still compare with it.
REPLACED_CLASSES = {
    "ml.recommend.factorization.ALSRecommender": ("ml.recommend.factorization.IALSRecommender", {"cg_steps"}),
}


def recommender_from_spec(spec: dict) -> Recommender:
    successor, dropped = REPLACED_CLASSES.get(spec["class"], (spec["class"], set()))
    module, _, name = successor.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    params = {key: value for key, value in spec["params"].items() if key not in dropped}
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
    events: pd.DataFrame,
    candidates: dict[str, Recommender | list[Recommender]] | None = None,
    scoring: Scoring | None = None,
) -> RecommenderTraining:
    """Choose model, configuration and recency on a validation split nested in the training part, report
    them on the test part, then refit the choice on every event's scores under the chosen recency.

    scoring: interaction weights and decay floor (Scoring.from_settings: what dbt receives too)."""
    events = events[EVENT_COLUMNS]
    selection = select_recommender(candidates or default_recommender_candidates(), events, scoring=scoring)
    scores = scores_from_events(events, selection.recency, scoring)
    chosen = selection.model.clone().fit(scores)
    evaluation = Evaluation(
        metric=RECOMMENDER_METRIC,
        value=float(selection.metrics.loc[selection.key, RECOMMENDER_METRIC]),
        higher_is_better=True,
        data_fingerprint=frame_fingerprint(events),
        config=config_json(recommender_spec(selection.model, selection.recency)),
        baseline=selection.baseline,
        baseline_value=float(selection.metrics.loc[selection.baseline, RECOMMENDER_METRIC]),
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


def rescore_recommender(config: str, events: pd.DataFrame, scoring: Scoring | None = None) -> float:
    """NDCG@10 of a stored configuration on this data's test part: the champion's score on the same evaluation.

    A configuration stored before recency was a hyperparameter was fitted on the seed's mart: RECENT."""
    spec = json.loads(config)
    recency = Recency(**spec["recency"]) if "recency" in spec else RECENT
    train_events, test_events = temporal_split(events[EVENT_COLUMNS])
    model = recommender_from_spec(spec)
    train = scores_from_events(train_events, recency, scoring)
    return float(evaluate(model, train, test_events)[RECOMMENDER_METRIC])


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
    n_origins: int = 3,
    models: list | None = None,
    n_jobs: int | None = None,
) -> ForecasterTraining:
    """Backtest every model (default_models unless given) over `n_origins` rolling origins, choose one per
    demand class, forecast the horizon and derive the insights."""
    result = forecast_demand(
        daily_sales,
        products,
        freq=freq,
        horizon=horizon,
        prophet_top_n=prophet_top_n,
        n_origins=n_origins,
        calendar=calendar,
        models=models,
        n_jobs=n_jobs,
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
        baseline=FORECASTER_BASELINE,
        baseline_value=float(held_out["mase"].get(FORECASTER_BASELINE, float("nan"))),
    )
    return ForecasterTraining(result, insights, evaluation)


# --- publishing: train -> log -> register -> promote ------------------------------------------------------

ML_SOURCE = Path(__file__).resolve().parent
_PIP_REQUIREMENTS: list[str] = []  # served from the project's own locked environment, never pip-installed


@dataclass
class Trained:
    """A chosen model ready to register, and the evidence of the choice."""

    package: mlflow.pyfunc.PythonModel
    evaluation: Evaluation
    example: tuple[pd.DataFrame, dict]  # (model input, predict params): MLflow's signature and input example
    log_evidence: Callable[[], None]  # params, nested candidate runs, figures: into the active run
    summary: dict[str, Any] = field(default_factory=dict)  # what the orchestrator shows (frames become tables)


@dataclass
class TrainingJob:
    """One model to train and publish: its registered name, what it is trained from, how to train it."""

    name: str
    run_name: str  # the MLflow run that wraps the training
    key: str  # training_key of its data, configuration and code
    train: Callable[[], Trained]
    rescore: Callable[[str], float] | None = None  # the champion's configuration on this run's split


@dataclass(frozen=True)
class Published:
    """What publishing did: the decision, the evaluation of the version it concerns, the run that logged it."""

    name: str
    decision: PromotionDecision
    evaluation: Evaluation
    run_id: str | None
    trained: Trained | None  # None when nothing was trained (unchanged)

    @property
    def version(self) -> str:
        return self.decision.challenger_version


def code_fingerprint() -> str:
    """A hash of the ml/ sources: new training code is a reason to train again on the same data."""
    digest = hashlib.sha256()
    for path in sorted(ML_SOURCE.rglob("*.py")):
        digest.update(path.relative_to(ML_SOURCE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def training_key(config: dict, *frames: pd.DataFrame) -> str:
    """Identifies a training: the same frames, configuration and code give the same model."""
    parts = [frame_fingerprint(*frames), config_json(config), code_fingerprint()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def publish(
    job: TrainingJob,
    registry: ModelRegistry,
    experiment_id: str,
    tags: dict[str, str] | None = None,
    dagster_run_ended: Callable[[str], bool] | None = None,
) -> Published:
    """Train, log, register and promote `job`, or report "unchanged" when a registered version (champion or
    challenger) was trained from the same key: then nothing is trained, logged or registered.

    First, what a killed earlier publish left is settled: versions no alias names are marked abandoned
    (`ModelRegistry.mark_abandoned`; dagster_run_ended tells whether a Dagster run has ended), and a
    challenger registered but never decided is decided now."""
    registry.mark_abandoned(job.name, dagster_run_ended)
    existing = registry.trained_on(job.name, job.key)
    if existing is not None and "promotion.decision" not in existing.tags and existing.evaluation is not None:
        decision = registry.promote(job.name, existing.version, existing.evaluation, job.rescore)
        return Published(job.name, decision, existing.evaluation, existing.run_id, None)
    if existing is not None:
        champion = registry.champion(job.name)
        reason = f"unchanged: version {existing.version} was trained on the same data, configuration and code"
        decision = PromotionDecision("unchanged", reason, existing.version, champion.version if champion else None)
        return Published(job.name, decision, existing.evaluation, existing.run_id, None)
    mlflow.set_experiment(experiment_id=experiment_id)  # where the fluent API puts the nested runs too
    with mlflow.start_run(run_name=job.run_name, tags=tags) as run:
        trained = job.train()
        trained.log_evidence()
        model_input, params = trained.example
        output = trained.package.predict(None, model_input, params)
        model = mlflow.pyfunc.log_model(
            name="model",
            python_model=trained.package,
            signature=mlflow.models.infer_signature(model_input, output, params),
            input_example=(model_input, params),
            pip_requirements=_PIP_REQUIREMENTS,
        )
        version = registry.register_challenger(job.name, model, trained.evaluation, job.key)
        decision = registry.promote(job.name, version, trained.evaluation, job.rescore)
        mlflow.set_tags(
            {"registered_version": version, "promotion.decision": decision.outcome, "promotion.reason": decision.reason}
        )
    return Published(job.name, decision, trained.evaluation, run.info.run_id, trained)


def _metric_names(metrics: dict) -> dict:
    """MLflow metric names may not contain '@' (ndcg@10 -> ndcg_at_10); missing values are left out."""
    return {str(name).replace("@", "_at_"): float(value) for name, value in metrics.items() if pd.notna(value)}


def _log_snapshot(frame: pd.DataFrame, name: str) -> None:
    """The exact rows a model was trained on, as an MLflow dataset input (schema, digest, row count)."""
    mlflow.log_input(mlflow.data.from_pandas(frame, name=name), context="training")


def recommender_job(events: pd.DataFrame, products: pd.DataFrame, scoring: Scoring | None = None) -> TrainingJob:
    """The recommender: model, configuration and recency chosen on a validation split nested in the training
    part of `events`, reported on the test part against the stronger popularity, refit on every event."""
    candidates = default_recommender_candidates()
    config = {
        "candidates": {
            key: [recommender_spec(m) for m in spec] if isinstance(spec, list) else recommender_spec(spec)
            for key, spec in candidates.items()
        },
        "scoring": scoring.as_dict() if scoring is not None else None,
    }

    def train() -> Trained:
        training = train_recommender(events, candidates, scoring)
        metrics = training.candidates.drop(columns=["model", "params", "recency"]).astype(float)
        package = RecommenderPackage(training.model, products, training.key)
        scores = training.scores

        def log_evidence() -> None:
            mlflow.log_params({"chosen": training.key, "candidates": ",".join(map(str, metrics.index))})
            mlflow.log_params({"users": scores["user_id"].nunique(), "items": scores["product_id"].nunique()})
            mlflow.log_params({f"recency_{key}": value for key, value in training.recency.as_dict().items()})
            for key, row in metrics.iterrows():
                with mlflow.start_run(run_name=str(key), nested=True):
                    mlflow.log_params({"candidate": key, **training.candidates.loc[key, "params"]})
                    mlflow.log_metrics(_metric_names(row.to_dict()))
            mlflow.log_metrics(_metric_names({f"chosen_{k}": v for k, v in metrics.loc[training.key].items()}))
            figure = metric_by_candidate(metrics, RECOMMENDER_METRIC, training.key)
            mlflow.log_figure(figure, "ndcg_by_candidate.png")
            mlflow.log_dict(recommender_spec(training.model, training.recency), "model_spec.json")
            mlflow.log_table(training.grid.astype({"params": str}), "validation_grid.json")
            _log_snapshot(scores, "user_item_scores")

        users = scores["user_id"].drop_duplicates().astype(str).head(2).tolist()
        return Trained(
            package=package,
            evaluation=training.evaluation,
            example=(pd.DataFrame({"user_id": users}), {"count": 5}),
            log_evidence=log_evidence,
            summary={
                "chosen": training.key,
                "recency": training.recency.label,
                "metrics_by_candidate": training.candidates.drop(columns="params"),
                **{f"count_{key}": value for key, value in training.counts.items()},
            },
        )

    return TrainingJob(
        name=RECOMMENDER_MODEL_NAME,
        run_name="recommender",
        key=training_key(config, events[EVENT_COLUMNS], products),
        train=train,
        rescore=lambda champion_config: rescore_recommender(champion_config, events, scoring),
    )


def _scored_on(n_series: pd.Series) -> pd.Series:
    """Per model, the series its backtest metrics cover: a model run on a subset (Prophet on the top sellers)
    says so, since its mean MASE is then over other series than the rest (its relative_mase is comparable)."""
    total = int(n_series.max()) if len(n_series) else 0
    return n_series.map(
        lambda n: f"all {total} series" if n == total else f"only {n} of {total} series: compare relative_mase"
    )


def forecaster_job(
    daily_sales: pd.DataFrame,
    products: pd.DataFrame,
    freq: str,
    horizon: int,
    prophet_top_n: int | None,
    calendar: str = "auto",
    n_jobs: int | None = None,
) -> TrainingJob:
    """The demand forecaster: backtested per demand class, forecasting `horizon` periods of `freq` on `n_jobs`
    cores (None: all this process may use)."""

    def train() -> Trained:
        training = train_forecaster(daily_sales, products, freq, horizon, prophet_top_n, calendar, n_jobs=n_jobs)
        result = training.result
        metrics = result.metrics.set_index("model").astype({"n_series": int})
        scored_on = _scored_on(metrics["n_series"])
        held_out = result.held_out.set_index("model")
        package = ForecastPackage(result.forecast, training.insights, products, result.freq, result.horizon)

        def log_evidence() -> None:
            series = result.history["product_id"].nunique()
            mlflow.log_params({"freq": result.freq, "horizon": result.horizon, "series": series})
            for model, row in metrics.iterrows():
                with mlflow.start_run(run_name=str(model), nested=True):
                    mlflow.log_params({"model": model, **result.model_params.get(str(model), {})})
                    mlflow.set_tag("scored_on", scored_on[model])
                    mlflow.log_metrics(_metric_names(row.to_dict()))
            mlflow.log_metric("chosen_held_out_mase", training.evaluation.value)
            coverage = held_out["coverage"].dropna()
            mlflow.log_metrics({f"held_out_coverage_{model}": value for model, value in coverage.items()})
            labelled = metrics.rename(index=lambda model: f"{model}\n({scored_on[model]})")
            mlflow.log_figure(metric_by_candidate(labelled, "mase"), "mase_by_model.png")
            top = result.history.groupby("product_id")["quantity"].sum().nlargest(3).index.tolist()
            mlflow.log_figure(backtest_plot(result.backtest.predictions, top, list(metrics.index)), "backtest.png")
            if len(result.feature_importance):
                title = "LightGBM global model: feature importance (final fit)"
                mlflow.log_figure(feature_importance_plot(result.feature_importance, title), "feature_importance.png")
            mlflow.log_table(result.selection, "selection.json")
            _log_snapshot(daily_sales, "fct_sales_daily")

        selection = result.selection
        by_class = selection.groupby("demand_class").agg(model=("model_name", "first"), series=("product_id", "size"))
        products_shown = result.forecast["product_id"].drop_duplicates().head(2).tolist()
        return Trained(
            package=package,
            evaluation=training.evaluation,
            example=(pd.DataFrame({"product_id": products_shown}), {"horizon": result.horizon}),
            log_evidence=log_evidence,
            summary={
                "metrics_by_model": metrics.assign(scored_on=scored_on),
                "choice_by_demand_class": by_class,
                "thin_history_series": int(selection["thin_history"].sum()),
                "short_history_series": int((selection["short_history"] & ~selection["thin_history"]).sum()),
                "held_out_by_model": held_out,
                **result.calendar.as_metadata(),
            },
        )

    config = {"freq": freq, "horizon": horizon, "prophet_top_n": prophet_top_n, "calendar": calendar}
    return TrainingJob(
        name=FORECASTER_MODEL_NAME,
        run_name="demand_forecaster",
        key=training_key(config, daily_sales[["product_id", "sales_date", "quantity"]], products),
        train=train,
    )
