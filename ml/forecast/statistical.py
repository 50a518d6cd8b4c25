"""Per-series statistical models from Nixtla's statsforecast: the ones retail demand planning uses.

AutoARIMA (SARIMA), AutoETS (exponential smoothing) and AutoTheta for regular demand; Croston-SBA, TSB,
ADIDA and IMAPA for intermittent demand (many periods without a sale). statsforecast compiles them with
numba and fits thousands of series in seconds, where Prophet takes a second or so each.

Short history: a series with fewer than two seasons of periods cannot identify a seasonal component (a
seasonal ARIMA or ETS needs at least two cycles to tell the season from the level), so the seasonal models
fit such series with season_length 1 (non-seasonal); `seasonal_ids` says which series got a season.
Intervals are left to the pipeline's conformal calibration on backtest residuals (ml.forecast.intervals).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ml.forecast.models import Forecaster, usable_cores
from ml.forecast.series import PERIOD_FREQ, SEASON_LENGTH, Freq, quantity_matrix

SEASONAL_KINDS = ("autoarima", "autoets", "autotheta")
INTERMITTENT_KINDS = ("croston_sba", "tsb", "adida", "imapa")
STATISTICAL_KINDS = SEASONAL_KINDS + INTERMITTENT_KINDS
# The Syntetos-Boylan classes each family was designed for: level/trend/season models for regular demand,
# Croston's family for demand with many empty periods. Fitting only there halves the work.
DESIGNED_FOR = {
    **dict.fromkeys(SEASONAL_KINDS, ("smooth", "erratic")),
    **dict.fromkeys(INTERMITTENT_KINDS, ("intermittent", "lumpy")),
}
# AutoARIMA's order search is statsforecast's slowest model by far (~0.1-1.4 s a series on 2 busy cores, against
# ~0.1 s for AutoTheta): it joins the candidates only where the regular-demand series are at most this many.
ARIMA_MAX_SERIES = 200
# statsforecast compiles its models with numba on first use (a minute on a busy 2-core machine) and caches
# the machine code on disk only when asked: ask, so only the first process after an install pays it.
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
MIN_PERIODS = 10  # below this a series gets its historic mean instead of a model fit
MIN_SEASONS = 2  # full seasons of history a series needs before a model may fit a seasonal component


# The seasonal kinds search and optimise per series (AutoARIMA ~50 ms a weekly series, AutoETS ~35 ms on one
# core: bench/forecaster_models.py) and
# are spread over the cores; the intermittent ones are closed-form smoothers, faster than a worker's start.
# A worker pays a fork and the pickling of its series: below this many series per worker it does not pay.
SERIES_PER_WORKER = 50


def _model(kind: str, season_length: int, high_frequency: bool = False):
    from statsforecast import models  # imported lazily: numba compiles on first use

    match kind:
        case "autoarima":
            # R's auto.arima approximates the likelihood during the order search for high-frequency data
            # (more than 12 periods a year); statsforecast does not by default.
            return models.AutoARIMA(season_length=season_length, approximation=high_frequency)
        case "autoets":
            return models.AutoETS(season_length=season_length)
        case "autotheta":
            return models.AutoTheta(season_length=season_length)
        case "croston_sba":
            return models.CrostonSBA()
        case "tsb":
            return models.TSB(alpha_d=0.1, alpha_p=0.1)  # smoothing of size and of probability, as in Teunter et al.
        case "adida":
            return models.ADIDA()
        case "imapa":
            return models.IMAPA()
    raise ValueError(f"unknown statistical model {kind!r}; known: {STATISTICAL_KINDS}")


class StatisticalForecaster(Forecaster):
    """One statsforecast model fitted per series; `kind` is one of STATISTICAL_KINDS and names its rows.

    `product_ids` (None: all) limits it to those series, the others get no forecast from it and other
    models cover them: forecast_demand passes the products of the demand classes it was DESIGNED_FOR.
    `n_jobs` (None: every core this process may use) bounds the worker processes of the SEASONAL_KINDS.
    """

    def __init__(
        self, freq: Freq = "W", kind: str = "autoets", product_ids: pd.Index | None = None, n_jobs: int | None = None
    ) -> None:
        super().__init__(freq)
        _model(kind, 1)  # fail on a typo at construction, not deep in a backtest
        self.kind = kind
        self.name = kind
        self.product_ids = product_ids
        self.n_jobs = n_jobs

    def _fit(self, history: pd.DataFrame) -> None:
        if self.product_ids is not None:
            history = history[history["product_id"].isin(self.product_ids)]
        self._ids, periods, wide = quantity_matrix(history)
        self._periods, self._wide = periods, wide

    def _workers(self, n_series: int) -> int:
        if self.kind not in SEASONAL_KINDS:
            return 1
        return max(1, min(usable_cores(self.n_jobs), n_series // SERIES_PER_WORKER))

    def seasonal_ids(self) -> pd.Index:
        """Series fitted with a seasonal component: seasonal kinds, and two full seasons of history."""
        if self.kind not in SEASONAL_KINDS:
            return pd.Index([])
        length = (~np.isnan(self._wide)).sum(axis=1)
        return self._ids[length >= MIN_SEASONS * SEASON_LENGTH[self.freq]]

    def _predict(self, horizon: int) -> pd.DataFrame:
        from statsforecast import StatsForecast

        seasonal = self._ids.isin(self.seasonal_ids())
        length = (~np.isnan(self._wide)).sum(axis=1)
        tiny = length < MIN_PERIODS  # AutoETS refuses "tiny datasets": such a series gets its mean, as it would
        future = self._future(horizon)
        means = np.nanmean(self._wide[tiny], axis=1) if tiny.any() else np.empty(0)
        frames = [
            pd.DataFrame(
                {
                    "product_id": np.repeat(self._ids[tiny].to_numpy(), horizon),
                    "period_start": np.tile(future.to_numpy(), int(tiny.sum())),
                    "yhat": np.repeat(means, horizon),
                }
            )
        ]
        seasonal &= ~tiny
        for group, season_length in ((seasonal, SEASON_LENGTH[self.freq]), (~seasonal & ~tiny, 1)):
            if not group.any():
                continue
            wide = self._wide[group]
            started = ~np.isnan(wide)
            long = pd.DataFrame(
                {
                    "unique_id": np.repeat(self._ids[group].to_numpy(), started.sum(axis=1)),
                    "ds": np.tile(self._periods.to_numpy(), len(wide))[started.ravel()],
                    "y": wide[started],
                }
            )
            model = _model(self.kind, season_length, high_frequency=SEASON_LENGTH[self.freq] > 12)
            engine = StatsForecast(models=[model], freq=PERIOD_FREQ[self.freq], n_jobs=self._workers(len(wide)))
            predicted = engine.forecast(df=long, h=horizon)
            value = predicted.columns[-1]  # the model's alias
            frames.append(
                pd.DataFrame(
                    {
                        "product_id": predicted["unique_id"].to_numpy(),
                        "period_start": predicted["ds"].to_numpy(),
                        "yhat": predicted[value].to_numpy(dtype=float),
                    }
                )
            )
        out = pd.concat(frames, ignore_index=True)
        out["yhat"] = out["yhat"].fillna(0.0)
        return out.assign(yhat_lower=out["yhat"], yhat_upper=out["yhat"])
