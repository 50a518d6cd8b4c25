"""Prophet, one model per series: the slow member, so it can be limited to the top sellers."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pandas as pd

from ml.forecast.models import LOWER_Q, PREDICTION_COLUMNS, UPPER_Q, Forecaster, usable_cores
from ml.forecast.series import Freq
from ml.forecast.statistical import MIN_SEASONS

# Fourier order of the yearly cycle: Prophet's default 10 (20 terms) interpolates two dozen monthly points
# exactly, leaving a zero-width interval and a wild forecast; 3 keeps a smooth annual shape.
YEARLY_ORDER = {"D": 10, "W": 10, "M": 3}
_NOISY_LOGGERS = ("cmdstanpy", "prophet", "prophet.plot")


@contextmanager
def _quiet() -> Iterator[None]:
    """Mute cmdstanpy's per-fit chatter and Prophet's log and library warnings, then restore the loggers.

    Disabling (rather than raising the level) survives both libraries resetting levels on first use.
    """
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    states = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="prophet")  # its pandas deprecations are not ours to fix
            yield
    finally:
        for logger, state in zip(loggers, states, strict=True):
            logger.disabled = state


class ProphetForecaster(Forecaster):
    """Per-series Prophet with yearly seasonality (given two years of history) and weekly for daily data.

    top_n limits it to the series with the largest total quantity in the fitted history (0.1-0.2 s to fit
    and 0.05 s to predict one series, so thousands of series x backtest origins add up); the others get
    no Prophet forecast and the remaining models cover them. Prophet's own 80% interval gives yhat_lower / yhat_upper.
    Each fit optimises in a Stan child process (cmdstanpy), so `n_jobs` threads (None: every core this
    process may use) fit that many series at once.
    """

    name = "prophet"

    def __init__(
        self, freq: Freq = "W", top_n: int | None = None, uncertainty_samples: int = 200, n_jobs: int | None = None
    ) -> None:
        super().__init__(freq)
        self.top_n = top_n
        self.uncertainty_samples = uncertainty_samples
        self.n_jobs = n_jobs

    def _fit(self, history: pd.DataFrame) -> None:
        volume = history.groupby("product_id")["quantity"].sum().sort_values(ascending=False, kind="stable")
        chosen = volume.index if self.top_n is None else volume.index[: self.top_n]
        series = history[history["product_id"].isin(chosen)]
        by_product = dict(list(series.groupby("product_id", sort=True)))
        workers = max(1, min(usable_cores(self.n_jobs), len(by_product)))
        with _quiet(), ThreadPoolExecutor(workers) as pool:
            self._models = dict(zip(by_product, pool.map(self._fit_one, by_product.values()), strict=True))

    def _fit_one(self, frame: pd.DataFrame):
        from prophet import Prophet  # imported lazily: slow, and only needed when Prophet runs

        ds = frame["period_start"]
        # Two years before a yearly cycle: one year cannot tell the season from the level (short history).
        has_year = ds.max() - ds.min() >= pd.Timedelta(days=MIN_SEASONS * 365)
        model = Prophet(
            yearly_seasonality=YEARLY_ORDER[self.freq] if has_year else False,
            weekly_seasonality=self.freq == "D",
            daily_seasonality=False,
            interval_width=UPPER_Q - LOWER_Q,
            uncertainty_samples=self.uncertainty_samples,
        )
        return model.fit(pd.DataFrame({"ds": ds, "y": frame["quantity"]}))

    def _predict(self, horizon: int) -> pd.DataFrame:
        future = pd.DataFrame({"ds": self._future(horizon)})
        frames = []
        with _quiet():
            for product_id, model in self._models.items():
                forecast = model.predict(future)
                frames.append(
                    pd.DataFrame(
                        {
                            "product_id": product_id,
                            "period_start": future["ds"].to_numpy(),
                            "yhat": forecast["yhat"].to_numpy(),
                            "yhat_lower": forecast["yhat_lower"].to_numpy(),
                            "yhat_upper": forecast["yhat_upper"].to_numpy(),
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PREDICTION_COLUMNS)
