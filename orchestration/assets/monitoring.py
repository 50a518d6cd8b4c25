"""Monitoring group: watch the served models after the fact, and ask for a retrain on evidence.

- forecast_snapshots: the forecast as of each week (a weekly time-partitioned asset), so it can be scored
  once actuals land; a backfill recomputes past weeks from the data before them.
- forecast_accuracy: WAPE and MASE of every snapshot against actuals, next to the backtest's promise.
- recommendation_outcomes: hit rate of served recommendations per variant and model version.
- data_drift: Jensen-Shannon distance and PSI of the interaction mix, category demand and prices,
  recent window vs the window before it (the data's own dates).
- ab_report: champion vs challenger on logged outcomes, with a two-proportion z-test.

Each has asset checks with thresholds from Settings; a failing check writes an alert row (orchestration/
alerts.py), and a failing accuracy or drift check asks for a retrain.
"""

import warnings

import dagster as dg
import numpy as np
import pandas as pd

from ml.monitoring import (
    CHALLENGER,
    ab_verdict,
    distribution,
    jensen_shannon,
    population_stability_index,
    price_bands,
    recommendation_hit_rate,
    snapshot_accuracy,
    snapshot_models,
)
from ml.packaging import RECOMMENDER_MODEL_NAME
from ml.training import train_forecaster
from optimum.settings import Settings
from orchestration.alerts import SCHEMA, raise_alert
from orchestration.mlflow_resource import MlflowTracking
from orchestration.warehouse import Warehouse

MONITORING_GROUP = "monitoring"
SNAPSHOTS = f"{SCHEMA}.forecast_snapshots"
SNAPSHOT_COLUMNS = {
    "as_of": "TIMESTAMP",
    "product_id": "VARCHAR",
    "forecast_date": "TIMESTAMP",
    "yhat": "DOUBLE PRECISION",
    "yhat_lower": "DOUBLE PRECISION",
    "yhat_upper": "DOUBLE PRECISION",
    "model_name": "VARCHAR",
    "promised_mase": "DOUBLE PRECISION",
}
ACCURACY_CHECK = "accuracy_within_promise"
DRIFT_CHECK = "no_data_drift"
DRIFT_MIN_ROWS = 50  # rows each window needs before its distribution is compared
SCORED_SNAPSHOTS = 4  # the accuracy check judges the mean of the latest few scored weeks, not one noisy week


def monitoring_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([SCHEMA, name])


def mart(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def _table(frame: pd.DataFrame) -> dg.MetadataValue:
    numeric = frame.select_dtypes("number").columns
    return dg.MetadataValue.md(frame.round(dict.fromkeys(numeric, 4)).to_markdown(index=False))


def _failed(settings, warehouse, check: str, subject: str, message: str, retrain: bool) -> dict:
    alert_id = raise_alert(settings, warehouse, f"check_failed:{check}", subject, message, retrain=retrain)
    return {"alert_id": alert_id, "retrain_requested": retrain}


def build_monitoring_assets(settings: Settings) -> list:
    """Built per settings: the snapshot partitions start at Settings.snapshot_start."""
    weekly = dg.WeeklyPartitionsDefinition(start_date=settings.snapshot_start.isoformat(), day_offset=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # backfill_policy is beta: one run per backfill
        snapshot_asset = dg.asset(
            key=monitoring_key("forecast_snapshots"),
            group_name=MONITORING_GROUP,
            partitions_def=weekly,
            deps=[mart("fct_sales_daily"), mart("dim_products")],
            kinds={"python"},
            backfill_policy=dg.BackfillPolicy.single_run(),
            automation_condition=dg.AutomationCondition.eager(),  # the latest week, when the sales mart moves
        )

    @snapshot_asset
    def forecast_snapshots(
        context: dg.AssetExecutionContext,
        settings: dg.ResourceParam[Settings],
        warehouse: dg.ResourceParam[Warehouse],
    ) -> dg.MaterializeResult:
        """The forecast as of each week (Monday), from the sales before it, with the backtest's promised
        MASE: the champion's selection procedure on its fast candidates (ml.monitoring.snapshot_models) over
        Settings.snapshot_backtest_origins origins (2 by default), so a backfill of many weeks stays cheap."""
        products = warehouse.query("SELECT * FROM marts.dim_products")
        written, skipped = [], []
        for key in context.partition_keys:
            as_of = pd.Timestamp(key)
            daily = warehouse.query("SELECT * FROM marts.fct_sales_daily WHERE sales_date < ?", (as_of.date(),))
            if daily.empty or pd.Timestamp(daily["sales_date"].max()) < as_of - pd.Timedelta(days=1):
                skipped.append(key)  # the data does not reach this week yet
                with warehouse.transaction() as conn:
                    _ensure_snapshots(conn)
                    conn.execute(f"DELETE FROM {SNAPSHOTS} WHERE as_of = ?", (as_of.to_pydatetime(),))  # noqa: S608 -- SNAPSHOTS is a module constant
                continue
            training = train_forecaster(
                daily,
                products,
                settings.forecast_freq,
                settings.forecast_horizon,
                prophet_top_n=0,
                calendar=settings.forecast_calendar,
                n_origins=settings.snapshot_backtest_origins,
                models=snapshot_models(settings.forecast_freq, products, settings.forecast_workers),
            )
            forecast = training.result.forecast.assign(as_of=as_of, promised_mase=training.evaluation.value)
            frame = forecast.assign(forecast_date=pd.to_datetime(forecast["forecast_date"]))[list(SNAPSHOT_COLUMNS)]
            with warehouse.transaction() as conn:
                _ensure_snapshots(conn)
                conn.execute(f"DELETE FROM {SNAPSHOTS} WHERE as_of = ?", (as_of.to_pydatetime(),))  # noqa: S608 -- SNAPSHOTS is a module constant
                conn.append(SNAPSHOTS, frame)
            written.append(key)
        return dg.MaterializeResult(
            metadata={"weeks_written": written, "weeks_without_data": skipped, "dagster/row_count": _rows(warehouse)}
        )

    def _rows(warehouse: Warehouse) -> int:
        return warehouse.row_count(SNAPSHOTS)

    @dg.asset(
        key=monitoring_key("forecast_accuracy"),
        group_name=MONITORING_GROUP,
        deps=[forecast_snapshots, mart("fct_sales_daily")],
        kinds={"python"},
        check_specs=[dg.AssetCheckSpec(ACCURACY_CHECK, asset=monitoring_key("forecast_accuracy"))],
        automation_condition=dg.AutomationCondition.eager(),
    )
    def forecast_accuracy(
        settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.MaterializeResult:
        """WAPE and MASE of each past snapshot on the weeks observed since, against the promised MASE."""
        with warehouse.transaction() as conn:
            _ensure_snapshots(conn)
            snapshots = conn.query(f"SELECT * FROM {SNAPSHOTS}")  # noqa: S608 -- SNAPSHOTS is a module constant
        daily = warehouse.query("SELECT product_id, sales_date, quantity, revenue FROM marts.fct_sales_daily")
        accuracy = snapshot_accuracy(snapshots, daily, settings.forecast_freq)
        warehouse.replace_table(f"{SCHEMA}.forecast_accuracy", accuracy)
        scored = accuracy.dropna(subset=["mase", "promised_mase"]).tail(SCORED_SNAPSHOTS)
        if scored.empty:
            check = dg.AssetCheckResult(
                check_name=ACCURACY_CHECK, passed=True, metadata={"note": "no snapshot has actuals yet"}
            )
        else:
            ratio = float(scored["mase"].mean() / scored["promised_mase"].mean())
            passed = ratio <= settings.accuracy_max_mase_ratio
            metadata = {
                "mase_vs_promise": ratio,
                "threshold": settings.accuracy_max_mase_ratio,
                "weeks": [str(w) for w in scored["as_of"]],
            }
            if not passed:
                message = (
                    f"forecast MASE {scored['mase'].mean():.3f} is {ratio:.2f}x the backtest's promise "
                    f"{scored['promised_mase'].mean():.3f} over the latest {len(scored)} scored weeks"
                )
                metadata |= _failed(settings, warehouse, ACCURACY_CHECK, "forecast_accuracy", message, retrain=True)
            check = dg.AssetCheckResult(check_name=ACCURACY_CHECK, passed=passed, metadata=metadata)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": len(accuracy), "by_snapshot": _table(accuracy.tail(12))},
            check_results=[check],
        )

    return [forecast_snapshots, forecast_accuracy, recommendation_outcomes, data_drift, ab_report]


def _ensure_snapshots(conn) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in SNAPSHOT_COLUMNS.items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {SNAPSHOTS} ({body})")


def _recommend_log(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.query(
        "SELECT request_id, requested_at, caller_id, variant, model_version, item_id "
        "FROM staging.stg_prediction_log WHERE endpoint = '/recommend'"
    )


def _outcomes(settings: Settings, warehouse: Warehouse) -> pd.DataFrame:
    events = warehouse.query("SELECT user_id, product_id, event_at FROM marts.fct_interactions")
    return recommendation_hit_rate(_recommend_log(warehouse), events, settings.hit_rate_window_days)


OUTCOME_CHECK = "hit_rate_above_floor"


@dg.asset(
    key=monitoring_key("recommendation_outcomes"),
    group_name=MONITORING_GROUP,
    deps=[dg.AssetKey(["staging", "stg_prediction_log"]), mart("fct_interactions")],
    kinds={"python"},
    check_specs=[dg.AssetCheckSpec(OUTCOME_CHECK, asset=monitoring_key("recommendation_outcomes"))],
    automation_condition=dg.AutomationCondition.eager(),
)
def recommendation_outcomes(
    settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]
) -> dg.MaterializeResult:
    """Share of /recommend answers followed by an interaction with a served item within N days."""
    outcomes = _outcomes(settings, warehouse)
    warehouse.replace_table(f"{SCHEMA}.recommendation_outcomes", outcomes)
    judged = outcomes[outcomes["answers"] >= settings.ab_min_answers]
    low = judged[judged["hit_rate"] < settings.hit_rate_min]
    metadata = {"floor": settings.hit_rate_min, "versions_judged": len(judged)}
    if len(low):
        message = "; ".join(f"v{r.model_version} ({r.variant}) hit rate {r.hit_rate:.3f}" for r in low.itertuples())
        metadata |= _failed(settings, warehouse, OUTCOME_CHECK, "recommendation_outcomes", message, retrain=False)
    check = dg.AssetCheckResult(
        check_name=OUTCOME_CHECK, passed=low.empty, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(outcomes), "outcomes": _table(outcomes)}, check_results=[check]
    )


def drift_table(settings: Settings, warehouse: Warehouse) -> pd.DataFrame:
    """Distances per feature between the recent window and the reference window before it."""
    recent_days, reference_days = settings.drift_recent_days, settings.drift_reference_days
    events = warehouse.query("SELECT interaction_type, event_date FROM marts.fct_interactions")
    sales = warehouse.query(
        "SELECT s.sales_date, s.quantity, s.avg_unit_price, p.category FROM marts.fct_sales_daily s "
        "JOIN marts.dim_products p ON p.product_id = s.product_id WHERE s.quantity > 0"
    )
    rows = []

    def windows(dates: pd.Series) -> tuple[pd.Series, pd.Series, str]:
        dates = pd.to_datetime(dates)
        end = dates.max()
        split, start = end - pd.Timedelta(days=recent_days), end - pd.Timedelta(days=recent_days + reference_days)
        label = f"{start.date()}..{split.date()} vs ..{end.date()}"
        return (dates > start) & (dates <= split), dates > split, label

    def add(feature, reference: pd.Series, recent: pd.Series, label: str, before: pd.Series, after: pd.Series):
        counts = (int(before.sum()), int(after.sum()))
        judged = min(counts) >= DRIFT_MIN_ROWS  # an empty or tiny window says nothing about drift
        rows.append(
            {
                "feature": feature,
                "windows": label,
                "reference_rows": counts[0],
                "recent_rows": counts[1],
                "jensen_shannon": jensen_shannon(reference, recent) if judged else float("nan"),
                "psi": population_stability_index(reference, recent) if judged else float("nan"),
            }
        )

    if len(events):
        before, after, label = windows(events["event_date"])
        kinds = events["interaction_type"]
        add("interaction_mix", distribution(kinds[before]), distribution(kinds[after]), label, before, after)
    if len(sales):
        before, after, label = windows(sales["sales_date"])
        qty = sales["quantity"].astype(float)
        category = sales["category"]
        add(
            "category_demand",
            distribution(category[before], qty[before]),
            distribution(category[after], qty[after]),
            label,
            before,
            after,
        )
        prices = sales["avg_unit_price"].astype(float)
        edges = np.unique(np.nanquantile(prices[before], np.linspace(0.1, 0.9, 9))) if before.any() else np.array([])
        bands = price_bands(prices, edges)
        add(
            "prices",
            distribution(bands[before], qty[before]),
            distribution(bands[after], qty[after]),
            label,
            before,
            after,
        )
    columns = ["feature", "windows", "reference_rows", "recent_rows", "jensen_shannon", "psi"]
    return pd.DataFrame(rows, columns=columns)


@dg.asset(
    key=monitoring_key("data_drift"),
    group_name=MONITORING_GROUP,
    deps=[mart("fct_interactions"), mart("fct_sales_daily"), mart("dim_products")],
    kinds={"python"},
    check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset=monitoring_key("data_drift"))],
    automation_condition=dg.AutomationCondition.eager(),
)
def data_drift(settings: dg.ResourceParam[Settings], warehouse: dg.ResourceParam[Warehouse]) -> dg.MaterializeResult:
    """Interaction mix, category demand and price distribution: recent window vs the reference before it."""
    drift = drift_table(settings, warehouse)
    warehouse.replace_table(f"{SCHEMA}.data_drift", drift)
    drifted = drift[drift["jensen_shannon"] > settings.drift_max_distance]
    metadata = {"threshold_jensen_shannon": settings.drift_max_distance, "drift": _table(drift)}
    if len(drifted):
        message = "; ".join(f"{r.feature} JS {r.jensen_shannon:.3f} (PSI {r.psi:.3f})" for r in drifted.itertuples())
        metadata |= _failed(settings, warehouse, DRIFT_CHECK, "data_drift", message, retrain=True)
    check = dg.AssetCheckResult(check_name=DRIFT_CHECK, passed=drifted.empty, metadata=metadata)
    return dg.MaterializeResult(metadata={"dagster/row_count": len(drift)}, check_results=[check])


@dg.asset(
    key=monitoring_key("ab_report"),
    group_name=MONITORING_GROUP,
    deps=[monitoring_key("recommendation_outcomes")],
    kinds={"python"},
    automation_condition=dg.AutomationCondition.eager(),
)
def ab_report(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
    warehouse: dg.ResourceParam[Warehouse],
    mlflow_tracking: dg.ResourceParam[MlflowTracking],
) -> dg.MaterializeResult:
    """Champion vs challenger recommenders on logged outcomes (two-proportion z-test on the hit rate);
    with Settings.ab_promote_winner, a challenger that won becomes the champion."""
    outcomes = warehouse.query(f"SELECT * FROM {SCHEMA}.recommendation_outcomes")  # noqa: S608 -- SCHEMA is a module constant
    summary = ab_verdict(outcomes, settings.ab_min_answers, settings.ab_alpha)
    if summary["challenger_won"] and settings.ab_promote_winner:
        challenger_versions = outcomes.loc[outcomes["variant"] == CHALLENGER, "model_version"].unique()
        if len(challenger_versions) == 1:
            reason = (
                f"won the A/B test: hit rate {summary['challenger_hit_rate']:.3f} vs "
                f"{summary['champion_hit_rate']:.3f}, p={summary['p_value']:.4f}"
            )
            summary["promoted"] = mlflow_tracking.registry.promote_winner(
                RECOMMENDER_MODEL_NAME, str(challenger_versions[0]), reason
            )
    warehouse.replace_table(f"{SCHEMA}.ab_report", pd.DataFrame([summary]))
    context.log.info(f"A/B: {summary['verdict']}")
    return dg.MaterializeResult(metadata={"summary": summary["verdict"], **summary})
