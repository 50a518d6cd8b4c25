"""One LightGBM model over all series (a global model), forecasting recursively.

Why global: most products sell a few units a period, far too little to learn seasonality or a promotion
effect alone; pooled over the catalogue the model learns them once. Each series is divided by its own
mean so that slow movers and top sellers share one target scale.

Why recursive: one one-step-ahead model per fit, whose forecast for step h is fed back as lag 1 of step
h + 1. A direct strategy would train a model per horizon step, ~8x the cost, which matters at 5,000 series x
several backtest origins.

Prices enter one period late: a period's own price is known to the warehouse only when something sold in it
(it is the average selling price), so as a feature it would tell the model that a sale happened, a leak
that cost the backtest MASE 1.03 against 0.89 without it (bench/model_quality.py, BENCHMARKS.md). Future
prices are unknown too, so the horizon assumes list price and no promotion after the last known period.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.forecast.models import PREDICTION_COLUMNS, Forecaster, residual_band, usable_cores
from ml.forecast.series import Freq, quantity_matrix, to_wide

LAGS = {"D": (1, 2, 3, 4, 5, 6, 7, 14, 28), "W": (1, 2, 3, 4, 8, 13, 52), "M": (1, 2, 3, 6, 12)}
WINDOWS = {"D": (7, 28), "W": (4, 13), "M": (3, 6)}  # rolling mean / std over the periods before
_CATALOGUE = ["product_id", "category", "price"]
# Training rows a LightGBM thread needs to pay for itself (bench/forecaster_models.py --lightgbm-threads): 49,000
# weekly rows took 1.0 s on one thread and 1.2-1.4 s on two (a slower hour: 1.35 and 1.31 s), 99,000 break
# even, 495,000 gain 1.1-1.45x from a second thread.
ROWS_PER_THREAD = 100_000


class LightGBMGlobalForecaster(Forecaster):
    """Global gradient-boosted model on lags, rolling stats, calendar, price and category.

    products (optional; product_id, category, price) gives the category feature and the list price that
    avg_price is compared with; without it (or where price is missing) a product's median selling price
    is the reference. A period is a promotion when its price ratio is below `promo_ratio`; the features
    describe the period before the one predicted (price_ratio, promo: see the module docstring).
    The point model is Tweedie (mean of a zero-heavy, right-skewed count; predictions stay positive).
    Its own band is the spread of each product's in-sample one-step errors, like the local baselines':
    the forecaster serves the conformal band calibrated on backtest errors instead (ml.forecast.intervals),
    which made the two quantile models fitted here before (two of every three boosters) pure cost. n_jobs
    caps LightGBM's threads (None: every core this process may use), worth setting on a busy shared
    machine; below ROWS_PER_THREAD training rows a thread costs more than it brings.
    """

    name = "lightgbm"

    def __init__(
        self,
        freq: Freq = "W",
        products: pd.DataFrame | None = None,
        promo_ratio: float = 0.9,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        super().__init__(freq)
        self.products = products
        self.promo_ratio = promo_ratio
        self.params = dict(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=20,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=-1,
        )
        # Periods before a cell that its features read: the longest lag, or the widest window before lag 1.
        self._context = max(max(LAGS[freq]), max(WINDOWS[freq]) + 1)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        tree = {key: value for key, value in self.params.items() if key not in ("n_jobs", "verbose")}
        return {"freq": self.freq, "promo_ratio": self.promo_ratio, **tree}

    def _fit(self, history: pd.DataFrame) -> None:
        self._ids, self._periods, quantity = quantity_matrix(history)
        _, _, price = to_wide(history, "avg_price")
        static = self._static(self._ids, quantity, price)
        self._scale = static["scale"].to_numpy()
        self._log_scale = np.log1p(self._scale)
        self._categories = static["category"].to_numpy()
        self._category_levels = sorted(set(self._categories))
        self._y = quantity / self._scale[:, None]
        # Unsold periods have no price; carrying the last one forward keeps "no price" from leaking "no sale".
        ratio = pd.DataFrame(price / static["reference_price"].to_numpy()[:, None]).ffill(axis=1)
        self._ratio = ratio.fillna(1.0).to_numpy()

        features = self._features(self._y, self._ratio, self._periods)
        target = self._y.ravel()
        rows = ~np.isnan(target) & ~np.isnan(features["lag_1"].to_numpy())
        X, y = features[rows], target[rows]
        threads = min(usable_cores(self.params["n_jobs"]), max(1, len(X) // ROWS_PER_THREAD))
        import lightgbm as lgb  # imported when used: the package's other models (and their workers) never need it

        self._model = lgb.LGBMRegressor(objective="tweedie", **{**self.params, "n_jobs": threads}).fit(X, y)
        fitted = np.full(target.shape, np.nan)
        fitted[rows] = self._model.predict(X)
        self._band = residual_band((target - fitted).reshape(self._y.shape) * self._scale[:, None])

    def feature_importance(self) -> pd.DataFrame:
        """The point model's features by share of total split gain (feature, gain_share), largest first."""
        booster = self._model.booster_
        gain = booster.feature_importance(importance_type="gain")
        frame = pd.DataFrame({"feature": booster.feature_name(), "gain_share": gain / max(gain.sum(), 1e-12)})
        return frame.sort_values("gain_share", ascending=False, ignore_index=True)

    def _static(self, ids: pd.Index, quantity: np.ndarray, price: np.ndarray) -> pd.DataFrame:
        """Per product: mean quantity (the target scale), reference price (list, else median sold), category."""
        mean_quantity = np.nanmean(quantity, axis=1)  # every product has at least one period
        static = pd.DataFrame({"scale": np.where(mean_quantity > 0, mean_quantity, 1.0)}, index=ids)
        static["median_price"] = pd.DataFrame(price, index=ids).median(axis=1)
        catalogue = self.products if self.products is not None else pd.DataFrame(columns=_CATALOGUE)
        static = static.join(catalogue[_CATALOGUE].drop_duplicates("product_id").set_index("product_id"))
        list_price = static["price"].astype(float)  # the mart's decimals (or None) -> float / NaN
        static["reference_price"] = list_price.where(list_price > 0).fillna(static["median_price"])
        static["category"] = static["category"].fillna("unknown").astype(str)
        return static

    def _features(self, y: np.ndarray, ratio: np.ndarray, periods: pd.DatetimeIndex) -> pd.DataFrame:
        """Features of every cell (product, period) from the periods before it; row-major like y.ravel()."""
        n, t = y.shape
        columns = {f"lag_{lag}": _shift(y, lag).ravel() for lag in LAGS[self.freq]}
        for window in WINDOWS[self.freq]:
            mean, std = _rolling_mean_std(_shift(y, 1), window)
            columns[f"mean_{window}"], columns[f"std_{window}"] = mean.ravel(), std.ravel()
        calendar = {"month": periods.month}
        if self.freq != "M":
            calendar["week_of_year"] = periods.isocalendar().week.to_numpy()
        if self.freq == "D":
            calendar["day_of_week"] = periods.day_of_week
        for key, values in calendar.items():
            columns[key] = np.tile(np.asarray(values, dtype=float), n)
        previous_ratio = _shift(ratio, 1)
        columns["price_ratio"] = previous_ratio.ravel()
        columns["promo"] = (previous_ratio < self.promo_ratio).astype(float).ravel()
        columns["log_scale"] = np.repeat(self._log_scale, t)
        frame = pd.DataFrame(columns)
        frame["category"] = pd.Categorical(np.repeat(self._categories, t), categories=self._category_levels)
        return frame

    def _predict(self, horizon: int) -> pd.DataFrame:
        context = min(self._context, self._y.shape[1])
        n = len(self._ids)
        y = np.hstack([self._y[:, -context:], np.full((n, horizon), np.nan)])
        ratio = np.hstack([self._ratio[:, -context:], np.ones((n, horizon))])  # list price, no promotion
        future = self._future(horizon)
        periods = self._periods[-context:].append(future)
        yhat = np.empty((n, horizon))
        for step in range(horizon):
            column = context + step
            cells = self._features(y, ratio, periods).iloc[np.arange(n) * y.shape[1] + column]
            yhat[:, step] = self._model.predict(cells) * self._scale
            y[:, column] = np.maximum(yhat[:, step], 0.0) / self._scale
        low, high = self._band
        return pd.DataFrame(
            {
                "product_id": np.repeat(self._ids.to_numpy(), horizon),
                "period_start": np.tile(future.to_numpy(), n),
                "yhat": yhat.ravel(),
                "yhat_lower": (yhat + low[:, None]).ravel(),
                "yhat_upper": (yhat + high[:, None]).ravel(),
            }
        )[PREDICTION_COLUMNS]


def _shift(y: np.ndarray, lag: int) -> np.ndarray:
    """y moved `lag` periods later along each row, NaN where nothing precedes."""
    return np.hstack([np.full((len(y), min(lag, y.shape[1])), np.nan), y[:, : max(y.shape[1] - lag, 0)]])


def _rolling_mean_std(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean (>= 1 value) and sample std (>= 2 values) over `window` columns, NaN skipped.

    Summed over `window` shifted copies rather than with pandas' rolling (column by column, slow at
    5,000 series) or running cumulative sums (their rounding depends on how much history precedes, so
    the same window would give the tree slightly different values in training and in prediction).
    """

    def lagged(values: np.ndarray, lag: int) -> np.ndarray:
        return np.hstack(
            [np.zeros((len(values), min(lag, values.shape[1]))), values[:, : max(values.shape[1] - lag, 0)]]
        )

    seen = ~np.isnan(x)
    values = np.where(seen, x, 0.0)
    count = sum(lagged(seen.astype(float), lag) for lag in range(window))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= 1, sum(lagged(values, lag) for lag in range(window)) / count, np.nan)
        squares = sum(lagged(seen, lag) * (lagged(values, lag) - mean) ** 2 for lag in range(window))
        std = np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)
    return mean, std
