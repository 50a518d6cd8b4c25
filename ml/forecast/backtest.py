"""Rolling-origin backtest, error metrics, and the model choice per demand class.

Metrics per (model, product, origin) over one horizon window; all are "lower is better" except coverage:
  mae, rmse   in units;
  mape        mean |error| / actual over periods with a non-zero actual only (a zero actual has no
              percentage error), as a fraction; NaN when the window sold nothing;
  wape        sum |error| / sum actual, as a fraction; NaN when the window sold nothing;
  mase        mae / in-sample MAE of the seasonal naive forecast on the training part of that series
              (lag-1 naive when it is shorter than a season + 1); NaN where that scale is 0 (a constant
              training series), and then selection falls back to mae for the series;
  coverage    share of actuals inside [yhat_lower, yhat_upper] (nominal 0.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.forecast.models import EnsembleForecaster, Forecaster, MovingAverage, SeasonalNaive
from ml.forecast.series import SEASON_LENGTH, Freq, check_freq, quantity_matrix

KEYS = ["model", "product_id", "origin"]
PREDICTION_ORDER = [*KEYS, "period_start", "step", "actual", "yhat", "yhat_lower", "yhat_upper", "scale"]
ERROR_ORDER = [*KEYS, "mae", "rmse", "mape", "wape", "mase", "coverage", "scale"]


@dataclass
class Backtest:
    """predictions: one row per (model, product, origin, forecast period) with actual and step (1..horizon),
    for plots; errors: one row per (model, product, origin) with the metrics above. origin is the start
    of the first forecast period of that window."""

    predictions: pd.DataFrame
    errors: pd.DataFrame

    @classmethod
    def empty(cls) -> Backtest:
        """The backtest of no series (every product had thin history)."""
        return cls(predictions=pd.DataFrame(columns=PREDICTION_ORDER), errors=pd.DataFrame(columns=ERROR_ORDER))


def fit_predict(models: Sequence[Forecaster], history: pd.DataFrame, horizon: int) -> dict[str, pd.DataFrame]:
    """Fit each model and forecast; an ensemble whose members are all in `models` reuses their forecasts
    instead of fitting them a second time (Prophet and LightGBM are the expensive part)."""
    names = [model.name for model in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    fitted: dict[str, Forecaster] = {}
    out: dict[str, pd.DataFrame] = {}
    # Members before their ensemble; models with worker processes after the others, their workers started
    # first: each worker's start (a fresh interpreter importing statsforecast) then overlaps the others' fits.
    pooled = {model.name for model in models if model.start_workers()}
    for model in sorted(models, key=lambda m: (isinstance(m, EnsembleForecaster), m.name in pooled)):
        if isinstance(model, EnsembleForecaster) and all(fitted.get(m.name) is m for m in model.members):
            out[model.name] = model.combine([out[m.name] for m in model.members])
        else:
            out[model.name] = model.fit(history).predict(horizon)
        fitted[model.name] = model
    return {name: out[name] for name in names}


def mase_scale(history: pd.DataFrame, freq: Freq) -> pd.Series:
    """In-sample MAE of the seasonal naive forecast per product (lag-1 naive below a season + 1)."""
    ids, _, wide = quantity_matrix(history)
    season = SEASON_LENGTH[freq]
    wide = np.hstack([np.full((len(wide), max(0, season + 1 - wide.shape[1])), np.nan), wide])
    seasonal = pd.DataFrame(np.abs(wide[:, season:] - wide[:, :-season])).mean(axis=1)
    naive = pd.DataFrame(np.abs(wide[:, 1:] - wide[:, :-1])).mean(axis=1)
    return pd.Series(seasonal.fillna(naive).to_numpy(), index=ids, name="scale")


def rolling_origin_backtest(
    series: pd.DataFrame, models: Sequence[Forecaster], n_origins: int = 3, horizon: int = 8, freq: Freq = "W"
) -> Backtest:
    """Refit every model at n_origins cut-offs stepping back `horizon` periods at a time from the end and
    score each on the following `horizon` periods (non-overlapping windows covering the last
    n_origins * horizon periods). Series that have not started by a cut-off sit that origin out."""
    check_freq(freq)
    periods = np.sort(series["period_start"].unique())
    if len(periods) < n_origins * horizon + 1:
        raise ValueError(f"{len(periods)} periods cannot hold {n_origins} origins of {horizon} plus training data")
    frames = []
    for back in range(n_origins, 0, -1):  # oldest origin first
        cut = len(periods) - back * horizon  # index of the first forecast period
        train = series[series["period_start"] < periods[cut]]
        window = periods[cut : cut + horizon]
        actual = series[series["period_start"].isin(window)][["product_id", "period_start", "quantity"]]
        scale = mase_scale(train, freq)
        for name, predicted in fit_predict(models, train, horizon).items():
            scored = predicted.merge(actual, on=["product_id", "period_start"], how="inner")
            scored["model"], scored["origin"] = name, periods[cut]
            scored["step"] = np.searchsorted(window, scored["period_start"].to_numpy()) + 1
            scored["scale"] = scored["product_id"].map(scale).to_numpy()
            frames.append(scored)
    predictions = pd.concat(frames, ignore_index=True).rename(columns={"quantity": "actual"})
    return Backtest(predictions=predictions[PREDICTION_ORDER], errors=_errors(predictions))


def _pointwise(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-period error terms that the metrics average or sum."""
    p = predictions
    error = (p["yhat"] - p["actual"]).abs()
    return pd.DataFrame(
        {
            "abs_error": error,
            "sq_error": error**2,
            "pct_error": (error / p["actual"]).where(p["actual"] > 0),
            "actual": p["actual"],
            "covered": ((p["actual"] >= p["yhat_lower"]) & (p["actual"] <= p["yhat_upper"])).astype(float),
        }
    )


def _summaries(parts: pd.DataFrame, by: list[pd.Series]) -> pd.DataFrame:
    """mae, rmse, mape, wape, coverage of the pointwise terms per group."""
    g = parts.groupby(by, sort=False)
    sums = g[["abs_error", "actual"]].sum()
    return pd.DataFrame(
        {
            "mae": g["abs_error"].mean(),
            "rmse": np.sqrt(g["sq_error"].mean()),
            "mape": g["pct_error"].mean(),
            "wape": sums["abs_error"] / sums["actual"].where(sums["actual"] > 0),
            "coverage": g["covered"].mean(),
        }
    )


def _errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (model, product, origin) metrics from per-period predictions."""
    keys = [predictions[k] for k in KEYS]
    errors = _summaries(_pointwise(predictions), keys)
    errors["scale"] = predictions.groupby(keys, sort=False)["scale"].first()
    errors["mase"] = errors["mae"] / errors["scale"].where(errors["scale"] > 0)
    return errors.reset_index()[ERROR_ORDER]


def model_metrics(backtest: Backtest) -> pd.DataFrame:
    """One row per model: mae/rmse/mape/wape/coverage pooled over every backtested period, mase the mean
    over (product, origin) windows, and relative_mase = that mean divided by seasonal naive's mean MASE
    on the same windows (< 1 beats seasonal naive; NaN without a seasonal_naive model)."""
    p, e = backtest.predictions, backtest.errors
    table = _summaries(_pointwise(p), [p["model"]])
    table.insert(0, "n_series", p.groupby("model", sort=False)["product_id"].nunique())
    table["mase"] = e.groupby("model", sort=False)["mase"].mean()
    baseline = e[e["model"] == SeasonalNaive.name].set_index(["product_id", "origin"])["mase"].rename("baseline")
    paired = e.join(baseline, on=["product_id", "origin"]).dropna(subset=["mase", "baseline"])
    means = paired.groupby("model", sort=False)[["mase", "baseline"]].mean()
    table["relative_mase"] = means["mase"] / means["baseline"]
    return table.rename_axis("model").reset_index()


def short_products(series: pd.DataFrame, freq: Freq, min_seasons: int = 2) -> pd.Index:
    """Products with fewer than `min_seasons` seasons of periods: no model may fit them a seasonal component
    (they cannot tell a season from the level), so seasonal naive does not compete for them and the
    statistical models fit them non-seasonally."""
    counts = series.groupby("product_id").size()
    return counts.index[counts < min_seasons * SEASON_LENGTH[freq]]


def origins_that_fit(series: pd.DataFrame, horizon: int, n_origins: int) -> int:
    """As many of `n_origins` as the longest series holds beside a horizon of training data, at least one.

    Without this, a history shorter than n_origins + 1 horizons (120 days of weeks at horizon 8) left every
    series thin: nothing was backtested, the forecaster had no evaluation and its baseline check failed
    on NaN. With one origin the held-out score is in-sample (_split_last_origin)."""
    longest = int(series.groupby("product_id").size().max()) if len(series) else 0
    return max(1, min(n_origins, longest // horizon - 1))


def thin_products(series: pd.DataFrame, horizon: int, n_origins: int) -> pd.Index:
    """Products with too little history to backtest on every origin and still train on a horizon's worth:
    fewer than max(2, n_origins + 1) * horizon periods."""
    counts = series.groupby("product_id").size()
    return counts.index[counts < max(2, n_origins + 1) * horizon]


# Syntetos-Boylan cut-offs: average inter-demand interval (periods per period with a sale) and the squared
# coefficient of variation of the non-zero quantities.
ADI_CUTOFF, CV2_CUTOFF = 1.32, 0.49
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy")


def demand_classes(series: pd.DataFrame) -> pd.Series:
    """Per product, its Syntetos-Boylan demand class from its periods: smooth (regular, steady sizes),
    erratic (regular, varying sizes), intermittent (sparse, steady sizes) or lumpy (sparse, varying)."""
    sold = series[series["quantity"] > 0].groupby("product_id")["quantity"]
    periods = series.groupby("product_id").size()
    adi = periods / sold.size().reindex(periods.index).fillna(0).clip(lower=1)
    cv2 = (sold.std(ddof=0) / sold.mean()).pow(2).reindex(periods.index).fillna(0.0)
    sparse, varying = adi >= ADI_CUTOFF, cv2 >= CV2_CUTOFF
    labels = np.select([~sparse & ~varying, ~sparse & varying, sparse & ~varying], DEMAND_CLASSES[:3], "lumpy")
    return pd.Series(labels, index=periods.index, name="demand_class")


SEASONAL_COPY = (SeasonalNaive.name,)  # models that copy a season whatever the history: not for short series


def select_models(
    backtest: Backtest,
    classes: pd.Series | None = None,
    thin: Sequence[str] = (),
    short: Sequence[str] = (),
) -> pd.DataFrame:
    """One model per demand class (`classes`: product_id -> class; None: one class for all): the one with the
    lowest mean MASE over the class's products, each product's MASE first averaged over its origins.

    `short` products (short_products: under two seasons) form their own classes ("<class>, short history")
    where SEASONAL_COPY models do not compete: the fallback for a seasonal model they cannot fit is the
    best non-seasonal one, flagged short_history.

    Why per class and not per series: two or three 8-period windows per series make a per-series argmin
    mostly noise (on the demo data it scored worse on a held-out origin than moving average for every
    series; bench/model_quality.py), while a class pools hundreds of series into each decision.
    Only models scored on every product of the class compete (Prophet fits the top sellers only; it still
    reaches them through the ensemble). `thin` products get MovingAverage and thin_history = True.
    Columns: product_id, demand_class, model_name, mase and mae (that product's, for the chosen model),
    thin_history, short_history.
    """
    e = backtest.errors
    if classes is None:
        classes = pd.Series("all", index=e["product_id"].unique())
    is_short = e["product_id"].isin(list(short))
    label = e["product_id"].map(classes).fillna("unclassified").astype(str)
    e = e.assign(demand_class=label.where(~is_short, label + ", short history"))
    e = e[~(is_short & e["model"].isin(SEASONAL_COPY))]
    order = {name: rank for rank, name in enumerate(e["model"].unique())}
    keys = ["demand_class", "product_id", "model"]
    per = e.groupby(keys, sort=False).agg(mase=("mase", "mean"), mae=("mae", "mean"), windows=("origin", "size"))
    by_class = per.groupby(["demand_class", "model"]).agg(
        mase=("mase", "mean"), mae=("mae", "mean"), windows=("windows", "sum")
    )
    by_class = by_class.reset_index()
    complete = by_class["windows"] == by_class.groupby("demand_class")["windows"].transform("max")
    defined = by_class.groupby("demand_class")["mase"].transform(lambda m: m.notna().any())
    by_class = by_class[complete].assign(
        score=by_class["mase"].where(defined, by_class["mae"]),  # MASE undefined class-wide: MAE decides
        rank=by_class["model"].map(order),
    )
    best = by_class.sort_values(["demand_class", "score", "rank"]).drop_duplicates("demand_class")
    chosen = per.reset_index().merge(best[["demand_class", "model"]], on=["demand_class", "model"])
    chosen = chosen.rename(columns={"model": "model_name"})[["product_id", "demand_class", "model_name", "mase", "mae"]]
    fallback = pd.DataFrame(
        {
            "product_id": list(thin),
            "demand_class": "thin",
            "model_name": MovingAverage.name,
            "mase": np.nan,
            "mae": np.nan,
        }
    )
    out = pd.concat([chosen.assign(thin_history=False), fallback.assign(thin_history=True)], ignore_index=True)
    out["short_history"] = out["product_id"].isin(list(short)) | out["thin_history"]
    return out.sort_values("product_id", ignore_index=True)
