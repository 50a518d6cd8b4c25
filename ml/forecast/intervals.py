"""Conformal 80% intervals from backtest residuals, one calibration per model.

A model's own band (in-sample residual spread, Prophet's sampled interval; LightGBM's quantile models once)
is nominally 80% but measured 58-84% in the backtest. Split conformal prediction replaces it by what the
model actually missed by on windows it had not seen: per model, the 10th and 90th percentile of the
scaled residuals (actual - yhat) / scale over its most recent calibration window, where scale is the
series' MASE scale (its in-sample seasonal-naive MAE), so that one pair of quantiles fits slow movers and
top sellers alike. The band for a forecast is yhat + q * scale, clipped at zero demand.

Why the most recent window only: demand drifts, and errors with it. Pooled over every earlier origin, the
demo's served band covered 74.8% of the held-out origin (every model 73.4-79.5%); calibrated on the origin
just before it, 78.0% (76.3-82.2%; BENCHMARKS.md). One origin still holds a residual per series and period
(about 4,000 on the demo), enough for a 10th percentile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.forecast.models import LOWER_Q, UPPER_Q, finalize

QUANTILE_COLUMNS = ["model", "q_lower", "q_upper", "n_residuals"]


def _scale(values: pd.Series) -> pd.Series:
    """A constant training series has scale 0: its residuals are counted in units instead."""
    return values.where(values > 0, 1.0).fillna(1.0)


def conformal_quantiles(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per model, the LOWER_Q and UPPER_Q quantiles of the scaled residuals of its latest origin in backtest
    `predictions` (columns model, origin, actual, yhat, scale as in Backtest.predictions)."""
    if predictions.empty:
        return pd.DataFrame(columns=QUANTILE_COLUMNS)
    latest = predictions.groupby("model", sort=False)["origin"].transform("max")
    predictions = predictions[predictions["origin"] == latest]
    residual = (predictions["actual"] - predictions["yhat"]) / _scale(predictions["scale"])
    grouped = residual.groupby(predictions["model"], sort=False)
    return (
        pd.DataFrame(
            {
                "q_lower": grouped.quantile(LOWER_Q),
                "q_upper": grouped.quantile(UPPER_Q),
                "n_residuals": grouped.size(),
            }
        )
        .rename_axis("model")
        .reset_index()
    )


def calibrate(predictions: pd.DataFrame, model: str, quantiles: pd.DataFrame, scale: pd.Series) -> pd.DataFrame:
    """`predictions` of `model` with the conformal band (scale: product_id -> MASE scale); unchanged when
    the model has no calibration residuals."""
    row = quantiles[quantiles["model"] == model]
    if row.empty or predictions.empty:
        return predictions
    per_row = _scale(predictions["product_id"].map(scale)).to_numpy()
    yhat = predictions["yhat"].to_numpy(dtype=float)
    calibrated = predictions.assign(
        yhat_lower=yhat + float(row["q_lower"].iloc[0]) * per_row,
        yhat_upper=yhat + float(row["q_upper"].iloc[0]) * per_row,
    )
    return finalize(calibrated)


def inside_band(predictions: pd.DataFrame, quantiles: pd.DataFrame) -> pd.DataFrame:
    """model and inside (actual within the conformal band) per row of backtest `predictions` whose model has
    quantiles; the band is the one finalize() would serve."""
    bounds = predictions.merge(quantiles, on="model", how="inner")
    scale = _scale(bounds["scale"])
    yhat = bounds["yhat"].clip(lower=0.0)
    lower = np.minimum(yhat + bounds["q_lower"] * scale, yhat).clip(lower=0.0)
    upper = np.maximum(yhat + bounds["q_upper"] * scale, yhat)
    return pd.DataFrame({"model": bounds["model"], "inside": (bounds["actual"] >= lower) & (bounds["actual"] <= upper)})


def held_out_coverage(predictions: pd.DataFrame, quantiles: pd.DataFrame) -> pd.Series:
    """Per model, the share of actuals inside the conformal band in `predictions` (one origin, never part
    of the calibration that produced `quantiles`)."""
    inside = inside_band(predictions, quantiles)
    return inside.groupby("model", sort=False)["inside"].mean().rename("coverage")
