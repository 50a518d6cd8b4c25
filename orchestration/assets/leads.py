"""Leads group: score every lead (transparent scorer, or the outcome model when it beats it), serve the
champion's scores as marts.scored_leads, and warn when a scrape day finds too few new leads.

The lead scorer package bundles the scorer with the scored leads, so the champion must always hold the
latest leads: when the champion's design wins, it is re-registered on the new data (a refresh).
"""

import json

import dagster as dg
import mlflow
import pandas as pd

from ml.leads.outcome import (
    OutcomeModel,
    outcomes_from_status,
    rescore_lead_scorer,
    scorer_from_config,
    train_lead_scorer,
)
from ml.leads.package import LEAD_SCORER_MODEL_NAME, LeadScoringPackage
from ml.leads.score import TransparentScorer
from ml.registry import Evaluation, PromotionDecision, champion_version, promote_if_better, register_challenger
from optimum.settings import Settings
from orchestration.assets.ml import EXPERIMENT, _champion, _log_snapshot, _markdown, _metric_names, mart
from orchestration.mlflow_resource import MlflowTracking
from orchestration.warehouse import Warehouse

LEADS_GROUP = "leads"
SCORE_BINS = [0, 20, 40, 60, 80, 101]


def _lead_data(warehouse: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp | None]:
    leads = warehouse.query("SELECT * FROM marts.dim_leads ORDER BY lead_key")
    history = warehouse.query(
        "SELECT lead_key, status, changed_at FROM staging.stg_lead_status"
        " WHERE lead_key IS NOT NULL ORDER BY lead_key, changed_at"
    )
    as_of = pd.Timestamp(leads["latest_scrape_day"].max()) if len(leads) else None
    return leads, history, as_of


@dg.asset(
    group_name=LEADS_GROUP,
    deps=[mart("dim_leads"), dg.AssetKey(["staging", "stg_lead_status"])],
    kinds={"python", "mlflow"},
)
def lead_scorer(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
    mlflow_tracking: dg.ResourceParam[MlflowTracking],
) -> dg.MaterializeResult:
    """Compare the transparent scorer with an outcome model on the latest won/lost decisions; register
    the winner with every lead scored, and make it the champion."""
    leads, history, as_of = _lead_data(warehouse)
    if leads.empty:
        return dg.MaterializeResult(metadata={"skipped": "marts.dim_leads is empty"})
    weights = settings.lead_score_weights
    transparent = TransparentScorer(weights, tuple(settings.target_cities))
    training = train_lead_scorer(leads, history, transparent, settings.lead_precision_k, as_of)
    with mlflow_tracking.start_run(EXPERIMENT, "lead_scorer") as run:
        mlflow.log_params({"chosen": training.scorer.kind, "decided_leads": training.n_outcomes, "leads": len(leads)})
        mlflow.log_params({f"weight_{name}": value for name, value in weights.items()} | training.split)
        mlflow.set_tag("choice.reason", training.reason[:5000])
        for scorer_name, row in training.comparison.iterrows():
            mlflow.log_metrics(_metric_names({f"{scorer_name}_{metric}": value for metric, value in row.items()}))
        _log_snapshot(leads, "dim_leads")
        package = LeadScoringPackage(training.scorer, leads, as_of)
        mlflow.log_table(package.leads[["lead_key", "lead_score", "score_reasons"]], "scored_leads.json")
        decision = _register_and_promote(package, training, leads, history, weights, settings.lead_precision_k, as_of)
        mlflow.set_tags({"promotion.decision": str(decision.promote), "promotion.reason": decision.reason})
        link = mlflow_tracking.run_link(run)
    context.log.info(f"lead scorer: {training.reason}; {decision.reason}")
    scores = package.leads["lead_score"]
    return dg.MaterializeResult(
        metadata={
            "summary": training.reason,
            "chosen": training.scorer.kind,
            "decided_leads": training.n_outcomes,
            "comparison_on_held_out_period": _markdown(training.comparison) if len(training.comparison) else "none",
            "score_distribution": _markdown(score_distribution(scores)),
            "champion_version": decision.challenger_version if decision.promote else str(decision.champion_version),
            "promotion_reason": decision.reason,
            "mlflow_run": link,
        }
    )


def _register_and_promote(package, training, leads, history, weights, k, as_of) -> PromotionDecision:
    """Register the run's choice; if the champion's design still wins on this data, register that design
    refreshed on the new leads instead, so the champion never serves yesterday's leads."""
    version = register_challenger(package, LEAD_SCORER_MODEL_NAME, training.evaluation)
    current = champion_version(LEAD_SCORER_MODEL_NAME)
    champion_eval = current[1] if current else None
    if pd.isna(training.evaluation.value) or champion_eval is None:
        return _make_champion(version, training.reason)
    rescored = None
    if champion_eval.config != training.evaluation.config:
        rescored = rescore_lead_scorer(champion_eval.config, leads, history, weights, k, as_of)
    decision = promote_if_better(LEAD_SCORER_MODEL_NAME, version, training.evaluation, rescored)
    if decision.promote or champion_eval.data_fingerprint == training.evaluation.data_fingerprint:
        return decision
    design = scorer_from_config(json.loads(champion_eval.config), weights)
    if isinstance(design, OutcomeModel):
        labelled = outcomes_from_status(history).merge(leads, on="lead_key")
        design.fit(labelled, labelled["won"], as_of)
    refreshed_eval = Evaluation(
        training.evaluation.metric,
        rescored if rescored is not None else float("nan"),
        True,
        training.evaluation.data_fingerprint,
        champion_eval.config,
    )
    refreshed = register_challenger(LeadScoringPackage(design, leads, as_of), LEAD_SCORER_MODEL_NAME, refreshed_eval)
    return promote_if_better(LEAD_SCORER_MODEL_NAME, refreshed, refreshed_eval)


def _make_champion(version: str, reason: str) -> PromotionDecision:
    """Without won/lost outcomes nothing can be compared: the transparent scorer from settings serves."""
    client = mlflow.MlflowClient()
    client.set_model_version_tag(LEAD_SCORER_MODEL_NAME, version, "promotion.decision", "promoted")
    client.set_model_version_tag(LEAD_SCORER_MODEL_NAME, version, "promotion.reason", reason)
    client.set_registered_model_alias(LEAD_SCORER_MODEL_NAME, "champion", version)
    return PromotionDecision(True, reason, version, None)


def score_distribution(scores: pd.Series) -> pd.DataFrame:
    """Leads per 20-point score band."""
    bands = pd.cut(scores, SCORE_BINS, right=False, labels=["0-19", "20-39", "40-59", "60-79", "80-100"])
    return bands.value_counts(sort=False).rename("leads").to_frame()


@dg.asset(key=mart("scored_leads"), group_name=LEADS_GROUP, deps=[lead_scorer], kinds={"python", "duckdb"})
def scored_leads(
    warehouse: dg.ResourceParam[Warehouse], mlflow_tracking: dg.ResourceParam[MlflowTracking]
) -> dg.MaterializeResult:
    """Every lead with the champion scorer's lead_score and score_reasons, best first."""
    package, version = _champion(LEAD_SCORER_MODEL_NAME, mlflow_tracking)
    if package is None:
        return dg.MaterializeResult(metadata={"skipped": "no champion lead scorer registered"})
    table = package.leads.drop(columns="category_group").assign(scorer=package.scorer_kind, model_version=version)
    warehouse.replace_table("marts.scored_leads", table)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "scorer": package.scorer_kind,
            "model_version": version,
            "score_distribution": _markdown(score_distribution(table["lead_score"])),
            "by_status": table["status"].value_counts().to_dict(),
            "preview": _markdown(table[["name", "city", "category", "lead_score", "score_reasons"]].head(10)),
        }
    )


@dg.asset_check(
    asset=mart("lead_daily"),
    name="new_leads_target",
    description="The latest scrape day found at least OPTIMUM_LEAD_DAILY_NEW_TARGET new leads.",
)
def new_leads_target(
    settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]
) -> dg.AssetCheckResult:
    days = warehouse.query("SELECT lead_day, new_leads FROM marts.lead_daily WHERE is_scrape_day ORDER BY lead_day")
    target = settings.lead_daily_new_target
    if days.empty:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"reason": "no scrape day yet"}
        )
    latest = days.iloc[-1]
    short = days[days["new_leads"] < target]
    return dg.AssetCheckResult(
        passed=bool(latest["new_leads"] >= target),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "latest_scrape_day": str(latest["lead_day"])[:10],
            "new_leads": int(latest["new_leads"]),
            "target": target,
            "scrape_days_below_target": len(short),
            "scrape_days": len(days),
        },
    )


lead_assets = [lead_scorer, scored_leads]
lead_checks = [new_leads_target]
