"""The lead scorer as a `ml.training.TrainingJob`: the same train -> log -> register -> promote path as the
recommender and the forecaster, plus the refresh a lead scorer needs.

A lead scorer package bundles the scored leads, so the champion must always hold the latest leads: when
the run's choice does not beat the champion on new data, the champion's own design is registered again,
refit on the new leads (`refresh_job`), and the registry promotes it as a refresh of the same design.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import mlflow
import pandas as pd

from ml.leads.outcome import (
    LeadScorerTraining,
    OutcomeModel,
    outcomes_from_status,
    rescore_lead_scorer,
    scorer_from_config,
    train_lead_scorer,
)
from ml.leads.package import LEAD_SCORER_MODEL_NAME, LeadScoringPackage
from ml.leads.score import TransparentScorer
from ml.registry import Evaluation, ModelRegistry, PromotionDecision
from ml.training import Published, Trained, TrainingJob, _log_snapshot, _metric_names, publish, training_key

SCORE_BINS = [0, 20, 40, 60, 80, 101]
EXAMPLE_COLUMNS = ["name", "category", "city", "phone_normalized", "website", "rating", "review_count", "n_sources"]


def score_distribution(scores: pd.Series) -> pd.DataFrame:
    """Leads per 20-point score band."""
    bands = pd.cut(scores, SCORE_BINS, right=False, labels=["0-19", "20-39", "40-59", "60-79", "80-100"])
    return bands.value_counts(sort=False).rename("leads").to_frame()


def _trained(package: LeadScoringPackage, evaluation: Evaluation, log_evidence, summary: dict) -> Trained:
    example = package.leads.reindex(columns=EXAMPLE_COLUMNS).head(2).astype(object)
    example = example.where(example.notna(), "")  # MLflow cannot infer a type from a column of None
    example[["rating", "review_count", "n_sources"]] = (
        example[["rating", "review_count", "n_sources"]].replace("", 0).astype(float)
    )
    return Trained(package, evaluation, (example, {}), log_evidence, summary)


def lead_scorer_job(
    leads: pd.DataFrame,
    history: pd.DataFrame,
    transparent: TransparentScorer,
    weights: dict[str, float],
    k: int,
    as_of: pd.Timestamp | None,
) -> TrainingJob:
    """Compare the transparent scorer with an outcome model on the latest won/lost decisions; package the
    winner with every lead scored. The champion's design is re-scored on this run's held-out period."""
    config = {"weights": weights, "target_cities": list(transparent.target_cities), "k": k}

    def train() -> Trained:
        training: LeadScorerTraining = train_lead_scorer(leads, history, transparent, k, as_of)
        package = LeadScoringPackage(training.scorer, leads, as_of)

        def log_evidence() -> None:
            params = {"chosen": training.scorer.kind, "decided_leads": training.n_outcomes, "leads": len(leads)}
            mlflow.log_params(params | {f"weight_{name}": value for name, value in weights.items()} | training.split)
            mlflow.set_tag("choice.reason", training.reason[:5000])
            for scorer_name, row in training.comparison.iterrows():
                mlflow.log_metrics(_metric_names({f"{scorer_name}_{metric}": value for metric, value in row.items()}))
            _log_snapshot(leads, "dim_leads")
            mlflow.log_table(package.leads[["lead_key", "lead_score", "score_reasons"]], "scored_leads.json")

        summary = {
            "summary": training.reason,
            "chosen": training.scorer.kind,
            "decided_leads": training.n_outcomes,
            "comparison_on_held_out_period": training.comparison if len(training.comparison) else "none",
            "score_distribution": score_distribution(package.leads["lead_score"]),
        }
        return _trained(package, training.evaluation, log_evidence, summary)

    def rescore(champion_config: str) -> float:
        value = rescore_lead_scorer(champion_config, leads, history, weights, k, as_of)
        return float("nan") if value is None else value

    return TrainingJob(
        name=LEAD_SCORER_MODEL_NAME,
        run_name="lead_scorer",
        key=training_key(config, leads.astype(str), history.astype(str)),
        train=train,
        rescore=rescore,
    )


def refresh_job(
    champion: Evaluation,
    rescored: float | None,
    evaluation: Evaluation,
    leads: pd.DataFrame,
    history: pd.DataFrame,
    weights: dict[str, float],
    as_of: pd.Timestamp | None,
) -> TrainingJob:
    """The champion's design (`champion.config`) refit on the new leads and outcomes, evaluated as the
    champion's design was on this run's split (`rescored`), on this run's data (`evaluation`)."""
    design = scorer_from_config(json.loads(champion.config), weights)
    refreshed = Evaluation(
        evaluation.metric,
        rescored if rescored is not None and not math.isnan(rescored) else float("nan"),
        True,
        evaluation.data_fingerprint,
        champion.config,
    )

    def train() -> Trained:
        if isinstance(design, OutcomeModel):
            labelled = outcomes_from_status(history).merge(leads, on="lead_key")
            design.fit(labelled, labelled["won"], as_of)
        package = LeadScoringPackage(design, leads, as_of)

        def log_evidence() -> None:
            mlflow.log_params({"chosen": design.kind, "refresh_of": champion.config[:500], "leads": len(leads)})
            _log_snapshot(leads, "dim_leads")

        summary = {"score_distribution": score_distribution(package.leads["lead_score"])}
        return _trained(package, refreshed, log_evidence, summary)

    return TrainingJob(
        name=LEAD_SCORER_MODEL_NAME,
        run_name="lead_scorer_refresh",
        key=training_key({"refresh_of": champion.config}, leads.astype(str), history.astype(str)),
        train=train,
    )


def publish_lead_scorer(
    leads: pd.DataFrame,
    history: pd.DataFrame,
    transparent: TransparentScorer,
    k: int,
    as_of: pd.Timestamp | None,
    registry: ModelRegistry,
    experiment_id: str,
    tags: dict[str, str] | None = None,
    dagster_run_ended: Callable[[str], bool] | None = None,
) -> tuple[Published, PromotionDecision]:
    """Publish the run's choice; then make sure the champion serves these leads: without won/lost outcomes
    the configured scorer serves, and a champion kept on new data is re-registered refit on them."""
    weights = dict(transparent.weights)
    job = lead_scorer_job(leads, history, transparent, weights, k, as_of)
    before = registry.champion(LEAD_SCORER_MODEL_NAME)
    published = publish(job, registry, experiment_id, tags, dagster_run_ended)
    decision = published.decision
    if decision.outcome != "kept":
        return published, decision
    if math.isnan(published.evaluation.value):
        reason = "no won/lost outcomes to compare: the configured scorer serves"
        registry.promote_winner(LEAD_SCORER_MODEL_NAME, published.version, reason)
        return published, PromotionDecision("promoted", reason, published.version, decision.champion_version)
    champion = before.evaluation if before is not None else None
    if champion is None or champion.data_fingerprint == published.evaluation.data_fingerprint:
        return published, decision
    rescored = job.rescore(champion.config) if champion.config != published.evaluation.config else None
    refreshed = refresh_job(champion, rescored, published.evaluation, leads, history, weights, as_of)
    return published, publish(refreshed, registry, experiment_id, tags, dagster_run_ended).decision
