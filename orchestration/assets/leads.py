"""Leads group: score every lead (transparent scorer, or the outcome model when it beats it), serve the
champion's scores as marts.scored_leads, and warn when a scrape day finds too few new leads.

The lead scorer package bundles the scorer with the scored leads, so the champion must always hold the
latest leads: when the champion's design wins, it is re-registered on the new data (a refresh).
"""

import dagster as dg
import pandas as pd

from ml.leads.package import LEAD_SCORER_MODEL_NAME
from ml.leads.score import TransparentScorer
from ml.leads.training import publish_lead_scorer, score_distribution
from optimum.settings import Settings
from orchestration.assets.ml import EXPERIMENT, _champion, _markdown, dagster_run_ended, lineage_tags, mart
from orchestration.mlflow_resource import MlflowTracking
from orchestration.warehouse import Warehouse

LEADS_GROUP = "leads"


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
    the winner with every lead scored, and keep the champion's leads current (ml/leads/training.py)."""
    leads, history, as_of = _lead_data(warehouse)
    if leads.empty:
        return dg.MaterializeResult(metadata={"skipped": "marts.dim_leads is empty"})
    transparent = TransparentScorer(settings.lead_score_weights, tuple(settings.target_cities))
    experiment_id = mlflow_tracking.experiment_id(EXPERIMENT)
    published, decision = publish_lead_scorer(
        leads,
        history,
        transparent,
        settings.lead_precision_k,
        as_of,
        mlflow_tracking.registry,
        experiment_id,
        lineage_tags(context, as_of),
        dagster_run_ended(context),
    )
    context.log.info(f"lead scorer v{published.version}: {decision.reason}")
    summary = published.trained.summary if published.trained else {}
    metadata = {
        **{key: _markdown(value) if isinstance(value, pd.DataFrame) else value for key, value in summary.items()},
        "version": published.version,
        "outcome": decision.outcome,
        "champion_version": str(decision.champion_after),
        "promotion_reason": decision.reason,
    }
    if published.run_id:
        metadata["mlflow_run"] = dg.MetadataValue.url(mlflow_tracking.run_link(experiment_id, published.run_id))
    return dg.MaterializeResult(metadata=metadata)


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
