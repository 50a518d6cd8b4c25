"""The forecaster interface, the two local baselines and the ensemble.

Every model fits on a history frame as produced by aggregate_sales (product_id, period_start, quantity,
avg_price; each series running to the same last period) and predicts the next `horizon` periods as
(product_id, period_start, yhat, yhat_lower, yhat_upper). Intervals are nominal 80% (10th to 90th
percentile) for every model, and predict() guarantees 0 <= yhat_lower <= yhat <= yhat_upper.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.forecast.series import DATETIME, SEASON_LENGTH, Freq, check_freq, next_periods, quantity_matrix

PREDICTION_COLUMNS = ["product_id", "period_start", "yhat", "yhat_lower", "yhat_upper"]
LOWER_Q, UPPER_Q = 0.1, 0.9


class Forecaster(ABC):
    """fit(history) -> self, predict(horizon) -> frame of PREDICTION_COLUMNS; `name` labels its rows."""

    name: str

    def __init__(self, freq: Freq = "W") -> None:
        check_freq(freq)
        self.freq = freq
        self._last_period: pd.Timestamp | None = None

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments that are plain values (for experiment tracking; frames and members left out)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        values = {name: getattr(self, name, None) for name in names}
        return {name: value for name, value in values.items() if isinstance(value, str | int | float | bool)}

    def fit(self, history: pd.DataFrame) -> Forecaster:
        """Learn from the history; the forecast horizon starts after its last period."""
        self._last_period = history["period_start"].max()
        self._fit(history)
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        """Forecast the `horizon` periods after the fitted history, with ordered, non-negative bounds."""
        if self._last_period is None:
            raise RuntimeError(f"{type(self).__name__} must be fit before predict")
        return finalize(self._predict(horizon))

    def start_workers(self) -> bool:
        """Start, without waiting, the worker processes this model's predict will spread over, and say whether
        it has any (fit_predict fits such models after the others, so that their start overlaps that work)."""
        return False

    def _future(self, horizon: int) -> pd.DatetimeIndex:
        return next_periods(self._last_period, horizon, self.freq)

    @abstractmethod
    def _fit(self, history: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict(self, horizon: int) -> pd.DataFrame: ...


def usable_cores(n_jobs: int | None) -> int:
    """n_jobs, or (None) the cores this process may run on: its CPU affinity, not the machine's count."""
    return n_jobs or len(os.sched_getaffinity(0))


def finalize(predictions: pd.DataFrame) -> pd.DataFrame:
    """Demand is never negative, and a bound on the wrong side of yhat would be a contradiction."""
    out = predictions[PREDICTION_COLUMNS].astype(
        {"period_start": DATETIME, "yhat": float, "yhat_lower": float, "yhat_upper": float}
    )
    out["yhat"] = out["yhat"].clip(lower=0.0)
    out["yhat_lower"] = np.minimum(out["yhat_lower"].fillna(out["yhat"]), out["yhat"]).clip(lower=0.0)
    out["yhat_upper"] = np.maximum(out["yhat_upper"].fillna(out["yhat"]), out["yhat"])
    return out.reset_index(drop=True)


def residual_band(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row 10th/90th percentile of in-sample errors (NaN ignored; NaN band when a row has none)."""
    band = pd.DataFrame(residuals).quantile([LOWER_Q, UPPER_Q], axis=1).to_numpy()
    return band[0], band[1]


def _frame(ids: pd.Index, future: pd.DatetimeIndex, yhat: np.ndarray, low: np.ndarray, high: np.ndarray):
    """Long prediction frame from [product, step] point forecasts and per-product error bands."""
    horizon = len(future)
    return pd.DataFrame(
        {
            "product_id": np.repeat(ids.to_numpy(), horizon),
            "period_start": np.tile(future.to_numpy(), len(ids)),
            "yhat": yhat.ravel(),
            "yhat_lower": (yhat + low[:, None]).ravel(),
            "yhat_upper": (yhat + high[:, None]).ravel(),
        }
    )


class SeasonalNaive(Forecaster):
    """Repeat the last season (7 days, 52 weeks or 12 months); the yardstick MASE is scaled by.

    A series shorter than one season repeats its last value instead (plain naive). The interval is the
    spread of the same method's in-sample errors (y_t - y_{t-season}, or y_t - y_{t-1} when naive).
    """

    name = "seasonal_naive"

    def _fit(self, history: pd.DataFrame) -> None:
        self._ids, _, wide = quantity_matrix(history)
        season = SEASON_LENGTH[self.freq]
        # Left-pad to more than a season of columns so short histories need no special indexing.
        wide = np.hstack([np.full((len(wide), max(0, season + 1 - wide.shape[1])), np.nan), wide])
        self._has_season = (~np.isnan(wide)).sum(axis=1) >= season
        self._last_season, self._last_value = wide[:, -season:], wide[:, -1]
        seasonal_band = residual_band(wide[:, season:] - wide[:, :-season])
        naive_band = residual_band(wide[:, 1:] - wide[:, :-1])
        self._band = [np.where(self._has_season, s, n) for s, n in zip(seasonal_band, naive_band, strict=True)]

    def _predict(self, horizon: int) -> pd.DataFrame:
        season = SEASON_LENGTH[self.freq]
        steps = np.arange(horizon) % season
        yhat = np.where(self._has_season[:, None], self._last_season[:, steps], self._last_value[:, None])
        return _frame(self._ids, self._future(horizon), yhat, *self._band)


class MovingAverage(Forecaster):
    """Flat forecast at the mean of the last `window` periods; the fallback for thin histories.

    It needs only a handful of periods, which is why series too short to backtest get it. The interval is
    the spread of its own in-sample one-step errors (y_t minus the mean of the `window` periods before).
    """

    name = "moving_average"
    DEFAULT_WINDOW = {"D": 28, "W": 8, "M": 3}  # four weeks of days (a whole number of weekly cycles)
    # The windows the backtest chooses among: a short one that follows a recent level, the default, and a
    # long one that averages noise away (a month, two and a quarter of weeks; a quarter, half and whole year).
    CANDIDATE_WINDOWS = {"D": (7, 28, 91), "W": (4, 8, 13), "M": (3, 6, 12)}

    def __init__(self, freq: Freq = "W", window: int | None = None) -> None:
        super().__init__(freq)
        self.window = window or self.DEFAULT_WINDOW[freq]
        if self.window != self.DEFAULT_WINDOW[freq]:
            self.name = f"moving_average_{self.window}"  # the default keeps the plain name thin series are served by

    def _fit(self, history: pd.DataFrame) -> None:
        self._ids, _, wide = quantity_matrix(history)
        by_period = pd.DataFrame(wide.T)
        self._level = by_period.iloc[-self.window :].mean().to_numpy()
        trailing = by_period.rolling(self.window, min_periods=1).mean().shift(1)
        self._band = residual_band((by_period - trailing).to_numpy().T)

    def _predict(self, horizon: int) -> pd.DataFrame:
        yhat = np.repeat(self._level[:, None], horizon, axis=1)
        return _frame(self._ids, self._future(horizon), yhat, *self._band)


class EnsembleForecaster(Forecaster):
    """Weighted mean of member forecasts (equal weights by default), bounds averaged the same way.

    Averaging models that err differently (a global tree model, a seasonal copy, a level) usually beats
    each of them. Where a member does not cover a series (Prophet limited to the top sellers) the mean
    runs over the members that do, with their weights renormalised.
    """

    name = "ensemble"

    def __init__(self, members: Sequence[Forecaster], weights: Sequence[float] | None = None, name: str = "ensemble"):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if len({m.freq for m in members}) != 1:
            raise ValueError("ensemble members must share one freq")
        super().__init__(members[0].freq)
        self.members = list(members)
        self.weights = list(weights) if weights is not None else [1.0] * len(members)
        if len(self.weights) != len(self.members) or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError("weights must be one non-negative number per member, not all zero")
        self.name = name

    @property
    def hyperparameters(self) -> dict[str, Any]:
        weights = dict(zip((m.name for m in self.members), self.weights, strict=True))
        return {"freq": self.freq, **{f"weight.{name}": weight for name, weight in weights.items()}}

    def _fit(self, history: pd.DataFrame) -> None:
        for member in self.members:
            member.fit(history)

    def _predict(self, horizon: int) -> pd.DataFrame:
        return self.combine([member.predict(horizon) for member in self.members])

    def combine(self, member_predictions: Sequence[pd.DataFrame]) -> pd.DataFrame:
        """Mix already computed member predictions (in member order); the backtest reuses them this way."""
        stacked = pd.concat(
            [p.assign(_w=w) for p, w in zip(member_predictions, self.weights, strict=True) if w > 0],
            ignore_index=True,
        )
        values = ["yhat", "yhat_lower", "yhat_upper"]
        weighted = stacked[values].mul(stacked["_w"], axis=0).assign(_w=stacked["_w"])
        sums = weighted.groupby([stacked["product_id"], stacked["period_start"]], sort=True).sum()
        return finalize(sums[values].div(sums["_w"], axis=0).reset_index())
