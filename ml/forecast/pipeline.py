"""forecast_demand: daily mart rows in, a per-product forecast with its evidence out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import poisson

from ml.forecast.backtest import (
    Backtest,
    demand_classes,
    fit_predict,
    mase_scale,
    model_metrics,
    origins_that_fit,
    rolling_origin_backtest,
    select_models,
    short_products,
    thin_products,
)
from ml.forecast.intervals import calibrate, conformal_quantiles, held_out_coverage, inside_band
from ml.forecast.lightgbm_model import LightGBMGlobalForecaster
from ml.forecast.models import LOWER_Q, UPPER_Q, EnsembleForecaster, Forecaster, MovingAverage, SeasonalNaive
from ml.forecast.prophet_model import ProphetForecaster
from ml.forecast.series import CalendarDecision, CalendarRule, Freq, aggregate_sales, decide_calendar, next_periods
from ml.forecast.statistical import ARIMA_MAX_SERIES, DESIGNED_FOR, STATISTICAL_KINDS, StatisticalForecaster

FORECAST_COLUMNS = ["product_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_name", "thin_history"]
RUN_RATE = "run_rate"
IMPORTANCE_COLUMNS = ["feature", "gain_share"]


@dataclass
class ForecastResult:
    """forecast: product_id, forecast_date (period start), yhat, yhat_lower, yhat_upper, model_name,
    thin_history; `horizon` rows per product with sales history.
    metrics: one row per model (model_metrics); selection: per product the backtest's choice
    (select_models), for the products in history; backtest: per-period predictions and per
    (model, product, origin) errors;
    history: the complete-period series the models were fit on (aggregate_sales);
    feature_importance: the global LightGBM model's final fit (feature, gain_share), empty without one;
    calendar: the periods the history spans and what was dropped (decide_calendar);
    held_out: one row per model and one for the served choice ("chosen"), scored on the last origin, which
    neither the choice nor the interval calibration saw: series, mase, coverage (conformal 80% band);
    intervals: the conformal quantiles per model on its latest origin, applied to the served forecast;
    model_params: each model's hyperparameters (Forecaster.hyperparameters), by model name."""

    forecast: pd.DataFrame
    metrics: pd.DataFrame
    selection: pd.DataFrame
    backtest: Backtest
    history: pd.DataFrame
    freq: Freq
    horizon: int
    feature_importance: pd.DataFrame
    calendar: CalendarDecision
    held_out: pd.DataFrame
    intervals: pd.DataFrame
    model_params: dict[str, dict]


def default_models(
    freq: Freq = "W",
    products: pd.DataFrame | None = None,
    prophet_top_n: int | None = 50,
    n_jobs: int | None = None,
    classes: pd.Series | None = None,
) -> list[Forecaster]:
    """Seasonal naive, moving averages over MovingAverage.CANDIDATE_WINDOWS, the statsforecast models
    (AutoARIMA, AutoETS, AutoTheta, Croston-SBA, TSB, ADIDA, IMAPA; each on the products of the demand
    classes it is DESIGNED_FOR when `classes` is given; AutoARIMA only up to ARIMA_MAX_SERIES of them),
    global LightGBM, Prophet on the top `prophet_top_n` sellers (0: none, None: all) and the equal-weight
    ensemble of LightGBM, the default moving average and Prophet where it runs."""
    lightgbm = LightGBMGlobalForecaster(freq, products=products, n_jobs=n_jobs)
    moving_average = MovingAverage(freq)
    statistical = []
    for kind in STATISTICAL_KINDS:
        product_ids = None if classes is None else classes.index[classes.isin(DESIGNED_FOR[kind])]
        if kind == "autoarima" and product_ids is not None and len(product_ids) > ARIMA_MAX_SERIES:
            continue  # too slow for the nightly budget at this size; AutoETS and AutoTheta remain
        statistical.append(StatisticalForecaster(freq, kind, product_ids=product_ids, n_jobs=n_jobs))
    windows = MovingAverage.CANDIDATE_WINDOWS[freq]
    other_windows = [MovingAverage(freq, window) for window in windows if window != moving_average.window]
    models: list[Forecaster] = [SeasonalNaive(freq), moving_average, *other_windows, *statistical, lightgbm]
    members: list[Forecaster] = [lightgbm, moving_average]
    if prophet_top_n != 0:
        prophet = ProphetForecaster(freq, top_n=prophet_top_n, n_jobs=n_jobs)
        models.append(prophet)
        members.append(prophet)
    return [*models, EnsembleForecaster(members)]


def forecast_demand(
    daily_sales: pd.DataFrame,
    products: pd.DataFrame,
    freq: Freq = "W",
    horizon: int = 8,
    n_origins: int = 3,
    prophet_top_n: int | None = 50,
    models: Sequence[Forecaster] | None = None,
    n_jobs: int | None = None,
    calendar: CalendarRule = "auto",
) -> ForecastResult:
    """Forecast `horizon` periods after the last period of the history for every product with sales.

    1. decide_calendar and aggregate_sales; 2. products with thin history (thin_products) are not
    backtested: they get MovingAverage, flagged thin_history; 3. every model is backtested on the rest
    over n_origins rolling origins; 4. each demand class gets the model with the best mean MASE on the
    origins before the last (select_models; series under two seasons in their own classes, without
    seasonal copies, flagged short_history), and the last origin scores that choice and each model's
    conformal interval calibrated on the origin before it (held_out); 5. the chosen models are refit on all
    the history, and their bands recalibrated on the latest origin. A chosen model that does not cover the
    product in the final fit falls back to MovingAverage. Products whose first sale lies in a dropped
    trailing partial period forecast their daily run rate since that sale (model_name "run_rate", flagged
    thin, Poisson 80% interval).
    models defaults to default_models(freq, products, prophet_top_n, n_jobs, demand classes). calendar: how to read the
    dates (decide_calendar; "auto" keeps the last period of an already aggregated export).
    """
    decision = decide_calendar(daily_sales, freq, calendar)
    history = aggregate_sales(daily_sales, freq, decision)
    n_origins = origins_that_fit(history, horizon, n_origins)
    thin = thin_products(history, horizon, n_origins)
    rich = history[~history["product_id"].isin(thin)]
    short = short_products(rich, freq)
    classes = demand_classes(rich)
    if models is None:
        models = default_models(freq, products, prophet_top_n, n_jobs, classes)
    models = list(models)
    backtest = rolling_origin_backtest(rich, models, n_origins, horizon, freq) if len(rich) else Backtest.empty()
    earlier, last = _split_last_origin(backtest)
    selection = select_models(earlier, classes, thin, short)
    held_out = _score_held_out(earlier, last, selection)

    final = fit_predict(_served_and_explained(models, selection), rich, horizon) if len(rich) else {}
    intervals = conformal_quantiles(backtest.predictions)
    scale = mase_scale(rich, freq) if len(rich) else pd.Series(dtype=float)
    parts = [
        selection[selection["model_name"] == name][["product_id", "model_name"]].merge(
            calibrate(predictions, name, intervals, scale), on="product_id"
        )
        for name, predictions in final.items()
    ]
    covered = pd.concat([part["product_id"] for part in parts]) if parts else pd.Series(dtype=str)
    uncovered = history[~history["product_id"].isin(covered)]  # thin, or dropped from Prophet's top-N
    if len(uncovered):
        parts.append(MovingAverage(freq).fit(uncovered).predict(horizon).assign(model_name=MovingAverage.name))
    parts.append(_run_rate(daily_sales, history, horizon, freq, decision.last_period))
    forecast = pd.concat([part for part in parts if len(part)], ignore_index=True)
    forecast["thin_history"] = ~forecast["product_id"].isin(rich["product_id"])
    forecast = forecast.rename(columns={"period_start": "forecast_date"})[FORECAST_COLUMNS]
    lightgbm = [model for model in models if isinstance(model, LightGBMGlobalForecaster)]
    importance = lightgbm[0].feature_importance() if final and lightgbm else pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    return ForecastResult(
        forecast=forecast.sort_values(["product_id", "forecast_date"], ignore_index=True),
        metrics=model_metrics(backtest),
        selection=selection,
        backtest=backtest,
        history=history,
        freq=freq,
        horizon=horizon,
        feature_importance=importance,
        calendar=decision,
        held_out=held_out,
        intervals=intervals,
        model_params={model.name: model.hyperparameters for model in models},
    )


def _served_and_explained(models: Sequence[Forecaster], selection: pd.DataFrame) -> list[Forecaster]:
    """The models the final fit needs: those some demand class chose, the members of a chosen ensemble, and
    LightGBM for its feature importance. Refitting the rest on all the history would be thrown away (the
    statistical models cost most of the forecaster's time)."""
    chosen = set(selection["model_name"])
    needed = [m for m in models if m.name in chosen or isinstance(m, LightGBMGlobalForecaster)]
    members = [member for m in needed if isinstance(m, EnsembleForecaster) for member in m.members]
    names = {m.name for m in [*needed, *members]}
    return [m for m in models if m.name in names]


def _split_last_origin(backtest: Backtest) -> tuple[Backtest, Backtest]:
    """(the origins before the last, the last): choose on the first, score on the second. With one origin
    both are that origin (nothing is held out, and held_out says so by being in-sample)."""
    origins = backtest.errors["origin"]
    if origins.nunique() < 2:
        return backtest, backtest
    last = origins.max()
    before = backtest.predictions["origin"] < last
    return (
        Backtest(backtest.predictions[before], backtest.errors[origins < last]),
        Backtest(backtest.predictions[~before], backtest.errors[origins == last]),
    )


def _score_held_out(earlier: Backtest, last: Backtest, selection: pd.DataFrame) -> pd.DataFrame:
    """Per model and for the served choice: mean MASE over the last origin's series, and the coverage of the
    conformal band calibrated on the origin before it (conformal_quantiles: each model's latest)."""
    errors = last.errors
    quantiles = conformal_quantiles(earlier.predictions)
    table = errors.groupby("model", sort=False).agg(series=("product_id", "nunique"), mase=("mase", "mean"))
    table["coverage"] = held_out_coverage(last.predictions, quantiles)
    chosen = selection[~selection["thin_history"]][["product_id", "model_name"]].rename(columns={"model_name": "model"})
    served_errors = chosen.merge(errors, on=["product_id", "model"])
    served_predictions = chosen.merge(last.predictions, on=["product_id", "model"])
    table.loc["chosen"] = {
        "series": served_errors["product_id"].nunique(),
        "mase": served_errors["mase"].mean(),
        "coverage": inside_band(served_predictions, quantiles)["inside"].mean(),
    }
    return table.rename_axis("model").reset_index()


def _run_rate(
    daily: pd.DataFrame, history: pd.DataFrame, horizon: int, freq: Freq, last_period: pd.Timestamp
) -> pd.DataFrame:
    """Products with sales only in the dropped trailing partial period: units per day since their first
    sale, times the days in each forecast period."""
    dates = pd.to_datetime(daily["sales_date"])
    new = (daily["quantity"] > 0) & ~daily["product_id"].isin(history["product_id"])
    sold = pd.DataFrame({"product_id": daily["product_id"], "date": dates, "quantity": daily["quantity"]})[new]
    edges = next_periods(last_period, horizon + 1, freq)  # starts of the forecast periods and the one after
    per_product = sold.groupby("product_id").agg(units=("quantity", "sum"), first=("date", "min"))
    daily_rate = per_product["units"] / ((dates.max() - per_product["first"]).dt.days + 1)
    mean = np.outer(daily_rate.to_numpy(dtype=float), (edges[1:] - edges[:-1]).days.to_numpy())
    return pd.DataFrame(
        {
            "product_id": np.repeat(per_product.index.to_numpy(), horizon),
            "period_start": np.tile(edges[:-1].to_numpy(), len(per_product)),
            "yhat": mean.ravel(),
            "yhat_lower": poisson.ppf(LOWER_Q, mean).ravel(),
            "yhat_upper": poisson.ppf(UPPER_Q, mean).ravel(),
            "model_name": RUN_RATE,
        }
    )
