"""Watching served models: forecast accuracy after the fact, recommendation outcomes, distribution drift,
and the A/B split and its significance test. DataFrames in, DataFrames or numbers out.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from ml.forecast import EnsembleForecaster, Forecaster, LightGBMGlobalForecaster, MovingAverage, SeasonalNaive
from ml.forecast.backtest import mase_scale
from ml.forecast.series import Freq, aggregate_sales

CHAMPION = "champion"
CHALLENGER = "challenger"
_BUCKETS = 10_000


# --- forecast accuracy -----------------------------------------------------------------------------------


def snapshot_accuracy(snapshots: pd.DataFrame, daily_sales: pd.DataFrame, freq: Freq) -> pd.DataFrame:
    """WAPE and MASE of each forecast snapshot over the periods whose actuals have landed.

    snapshots: as_of, product_id, forecast_date, yhat, promised_mase (the backtest's MASE when the
    snapshot was made). Actuals are the complete periods of `daily_sales`; a snapshot with no period
    observed yet is left out. MASE scales each product's error by the seasonal-naive in-sample error of
    its history before as_of, as the backtest did."""
    columns = ["as_of", "periods_scored", "products", "wape", "mase", "promised_mase"]
    if snapshots.empty or daily_sales.empty:
        return pd.DataFrame(columns=columns)
    actuals = aggregate_sales(daily_sales, freq)[["product_id", "period_start", "quantity"]]
    actuals = actuals.rename(columns={"period_start": "forecast_date", "quantity": "actual"})
    snapshots = snapshots.assign(
        forecast_date=pd.to_datetime(snapshots["forecast_date"]).astype(actuals["forecast_date"].dtype)
    )
    scored = snapshots.merge(actuals, on=["product_id", "forecast_date"], how="inner")
    rows = []
    for as_of, part in scored.groupby("as_of", sort=True):
        history = actuals[actuals["forecast_date"] < pd.Timestamp(as_of)].rename(
            columns={"forecast_date": "period_start", "actual": "quantity"}
        )
        scale = mase_scale(history, freq) if len(history) else pd.Series(dtype=float)
        error = (part["yhat"] - part["actual"]).abs()
        sold = part["actual"].sum()
        per_product = error.groupby(part["product_id"]).mean() / scale.reindex(part["product_id"].unique())
        per_product = per_product.replace([np.inf, -np.inf], np.nan).dropna()
        rows.append(
            {
                "as_of": as_of,
                "periods_scored": part["forecast_date"].nunique(),
                "products": part["product_id"].nunique(),
                "wape": float(error.sum() / sold) if sold > 0 else float("nan"),
                "mase": float(per_product.mean()) if len(per_product) else float("nan"),
                "promised_mase": float(part["promised_mase"].iloc[0]),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def snapshot_models(freq: Freq, products: pd.DataFrame, n_jobs: int | None = None) -> list[Forecaster]:
    """The candidates behind each weekly snapshot: the champion's fast ones (seasonal naive, moving average,
    global LightGBM and their ensemble). A backfill fits every past week, so the statistical and Prophet
    models, minutes per fit on a busy machine and unfit for the short histories of early weeks, stay out.
    n_jobs: LightGBM's threads (None: every core)."""
    lightgbm, moving_average = LightGBMGlobalForecaster(freq, products=products, n_jobs=n_jobs), MovingAverage(freq)
    return [SeasonalNaive(freq), moving_average, lightgbm, EnsembleForecaster([lightgbm, moving_average])]


# --- recommendation outcomes ------------------------------------------------------------------------------


def recommendation_hit_rate(predictions: pd.DataFrame, events: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Per (variant, model_version): answers, and the share with an interaction by the same user with a
    recommended item within `window_days` after the answer.

    predictions: /recommend rows of the prediction log (request_id, requested_at, caller_id, variant,
    model_version, item_id). events: user_id, product_id, event_at."""
    columns = ["variant", "model_version", "answers", "hits", "hit_rate"]
    if predictions.empty:
        return pd.DataFrame(columns=columns)
    joined = predictions.merge(
        events[["user_id", "product_id", "event_at"]],
        left_on=["caller_id", "item_id"],
        right_on=["user_id", "product_id"],
        how="inner",
    )
    delay = pd.to_datetime(joined["event_at"]) - pd.to_datetime(joined["requested_at"])
    hit_requests = set(joined.loc[(delay >= pd.Timedelta(0)) & (delay <= pd.Timedelta(days=window_days)), "request_id"])
    answers = predictions.drop_duplicates("request_id").assign(hit=lambda f: f["request_id"].isin(hit_requests))
    summary = answers.groupby(["variant", "model_version"], as_index=False).agg(
        answers=("request_id", "size"), hits=("hit", "sum")
    )
    summary["hit_rate"] = summary["hits"] / summary["answers"]
    return summary[columns]


# --- drift ------------------------------------------------------------------------------------------------


def distribution(values: pd.Series, weights: pd.Series | None = None) -> pd.Series:
    """Share of each category (weighted when weights are given)."""
    weights = pd.Series(1.0, index=values.index) if weights is None else weights.astype(float)
    totals = weights.groupby(values.astype(str)).sum()
    return totals / totals.sum() if totals.sum() > 0 else totals


def population_stability_index(expected: pd.Series, actual: pd.Series, floor: float = 1e-4) -> float:
    """PSI of two category shares (0: same; > 0.25 is the usual 'significant shift')."""
    categories = expected.index.union(actual.index)
    p = expected.reindex(categories, fill_value=0.0).clip(lower=floor)
    q = actual.reindex(categories, fill_value=0.0).clip(lower=floor)
    return float(((q - p) * np.log(q / p)).sum())


def jensen_shannon(expected: pd.Series, actual: pd.Series) -> float:
    """Jensen-Shannon distance (base 2: 0 same, 1 disjoint) of two category shares."""
    categories = expected.index.union(actual.index)
    p = expected.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
    q = actual.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / b[mask])).sum())

    return math.sqrt(max((kl(p, m) + kl(q, m)) / 2, 0.0))


def price_bands(prices: pd.Series, edges: np.ndarray) -> pd.Series:
    """Prices as bands between fixed edges (the reference window's deciles), for a categorical drift."""
    return pd.Series(np.searchsorted(edges, prices.to_numpy(dtype=float), side="right"), index=prices.index).map(
        lambda band: f"band_{band:02d}"
    )


# --- A/B --------------------------------------------------------------------------------------------------


def assign_variant(user_id: str, challenger_share: float, salt: str = "optimum-ab") -> str:
    """Champion or challenger by a stable hash of the user id: the same user always gets the same arm,
    and about `challenger_share` of users get the challenger (0: nobody)."""
    if challenger_share <= 0:
        return CHAMPION
    digest = hashlib.blake2b(f"{salt}:{user_id}".encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "big") % _BUCKETS
    return CHALLENGER if bucket < challenger_share * _BUCKETS else CHAMPION


def two_proportion_z_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> tuple[float, float]:
    """(z, two-sided p-value) that B's success rate differs from A's (pooled standard error)."""
    if min(n_a, n_b) == 0:
        return float("nan"), float("nan")
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (hits_b / n_b - hits_a / n_a) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def ab_verdict(outcomes: pd.DataFrame, min_answers: int, alpha: float) -> dict:
    """Champion vs challenger on `recommendation_hit_rate` rows: rates, z, p and whether the challenger won
    (both arms have `min_answers`, its hit rate is higher, and significantly so at `alpha`)."""
    arms = outcomes.groupby("variant")[["answers", "hits"]].sum()
    champion = arms.loc[CHAMPION] if CHAMPION in arms.index else pd.Series({"answers": 0, "hits": 0})
    challenger = arms.loc[CHALLENGER] if CHALLENGER in arms.index else pd.Series({"answers": 0, "hits": 0})
    z, p = two_proportion_z_test(
        int(champion.hits), int(champion.answers), int(challenger.hits), int(challenger.answers)
    )
    enough = min(champion.answers, challenger.answers) >= min_answers
    won = bool(enough and z > 0 and p < alpha)
    if not enough:
        verdict = f"undecided: {min_answers} answers per arm needed"
    elif won:
        verdict = "challenger won"
    else:
        verdict = "no significant win for the challenger"

    def rate(arm: pd.Series) -> float:
        return float(arm.hits / arm.answers) if arm.answers else float("nan")

    return {
        "champion_answers": int(champion.answers),
        "champion_hit_rate": rate(champion),
        "challenger_answers": int(challenger.answers),
        "challenger_hit_rate": rate(challenger),
        "z": float(z),
        "p_value": float(p),
        "challenger_won": won,
        "verdict": verdict,
    }
