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
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ml.forecast.models import Forecaster, finalize
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


# The seasonal kinds search and optimise per series (AutoARIMA ~80 ms a weekly series, AutoETS ~35 ms) and
# are spread over the cores; the intermittent ones are closed-form smoothers, faster than a worker's start.
# A worker pays a fork and the pickling of its series: below this many series per worker it does not pay.
SERIES_PER_WORKER = 50


def _model(kind: str, season_length: int, high_frequency: bool = False):
    from statsforecast import models  # imported lazily: numba compiles on first use

    match kind:
        case "autoarima":
            # R's auto.arima approximates the likelihood during the order search for high-frequency data
            # (more than 12 periods a year); statsforecast does not by default. It cuts the search by 40%.
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
        cores = self.n_jobs or len(os.sched_getaffinity(0))
        return max(1, min(cores, n_series // SERIES_PER_WORKER))

    def seasonal_ids(self) -> pd.Index:
        """Series fitted with a seasonal component: seasonal kinds, and two full seasons of history."""
        if self.kind not in SEASONAL_KINDS:
            return pd.Index([])
        length = (~np.isnan(self._wide)).sum(axis=1)
        return self._ids[length >= MIN_SEASONS * SEASON_LENGTH[self.freq]]

    def _groups(self) -> list[tuple[np.ndarray, int]]:
        """(series mask, season length) of the fitted series a model fits: the seasonal ones, then the rest
        with season length 1; series under MIN_PERIODS are in neither (they get their mean)."""
        length = (~np.isnan(self._wide)).sum(axis=1)
        fits = length >= MIN_PERIODS  # AutoETS refuses "tiny datasets"
        seasonal = self._ids.isin(self.seasonal_ids()) & fits
        groups = [(seasonal, SEASON_LENGTH[self.freq]), (~seasonal & fits, 1)]
        return [(mask, season_length) for mask, season_length in groups if mask.any()]

    def _engine(self, season_length: int, n_series: int):
        from statsforecast import StatsForecast

        model = _model(self.kind, season_length, high_frequency=SEASON_LENGTH[self.freq] > 12)
        return StatsForecast(models=[model], freq=PERIOD_FREQ[self.freq], n_jobs=self._workers(n_series))

    @staticmethod
    def _long(ids: pd.Index, wide: np.ndarray, periods: pd.DatetimeIndex) -> pd.DataFrame:
        """statsforecast's long frame (unique_id, ds, y) of the rows of `wide`, each from its first period."""
        started = ~np.isnan(wide)
        return pd.DataFrame(
            {
                "unique_id": np.repeat(ids.to_numpy(), started.sum(axis=1)),
                "ds": np.tile(periods.to_numpy(), len(wide))[started.ravel()],
                "y": wide[started],
            }
        )

    def _predict(self, horizon: int) -> pd.DataFrame:
        tiny = (~np.isnan(self._wide)).sum(axis=1) < MIN_PERIODS
        future = self._future(horizon)
        means = np.repeat(np.nanmean(self._wide[tiny], axis=1) if tiny.any() else np.empty(0), horizon)
        frames = [
            pd.DataFrame(
                {
                    "product_id": np.repeat(self._ids[tiny].to_numpy(), horizon),
                    "period_start": np.tile(future.to_numpy(), int(tiny.sum())),
                    "yhat": means,
                    "yhat_lower": means,
                    "yhat_upper": means,
                }
            )
        ]
        for mask, season_length in self._groups():
            engine = self._engine(season_length, int(mask.sum()))
            frames.append(
                _rows(engine.forecast(df=self._long(self._ids[mask], self._wide[mask], self._periods), h=horizon))
            )
        return pd.concat(frames, ignore_index=True)

    def backtest(
        self, series: pd.DataFrame, origins: Sequence[pd.Timestamp], horizon: int
    ) -> dict[pd.Timestamp, pd.DataFrame]:
        """The seasonal kinds fit each series once, on the history before the first origin, and at the later
        origins only update it with the actuals since (statsforecast's cross-validation with refit=False,
        each model's `forward`): a third of the order searches, which are most of the forecaster's time.
        The structure (seasonal or not, ARIMA orders, ETS components) is the first origin's, a handicap
        the final fit on all the history does not have. Series too short to fit at the first origin, and
        the intermittent kinds (closed-form, cheap), are refit at every origin."""
        if self.kind not in SEASONAL_KINDS:
            return super().backtest(series, origins, horizon)
        if self.product_ids is not None:
            series = series[series["product_id"].isin(self.product_ids)]
        self.fit(series[series["period_start"] < origins[0]])  # each series' group, as of the first origin
        ids, periods, wide = quantity_matrix(series)
        out: dict[pd.Timestamp, list[pd.DataFrame]] = {origin: [] for origin in origins}
        fitted: list[str] = []
        for mask, season_length in self._groups():
            group = ids.isin(self._ids[mask])
            fitted += list(ids[group])
            engine = self._engine(season_length, int(group.sum()))
            long = self._long(ids[group], wide[group], periods)
            windows = engine.cross_validation(
                df=long, h=horizon, n_windows=len(origins), step_size=horizon, refit=False
            )
            cutoffs = np.sort(windows["cutoff"].unique())
            if len(cutoffs) != len(origins):
                raise RuntimeError(f"statsforecast returned {len(cutoffs)} windows for {len(origins)} origins")
            for cutoff, origin in zip(cutoffs, origins, strict=True):
                out[origin].append(finalize(_rows(windows[windows["cutoff"] == cutoff].drop(columns=["cutoff", "y"]))))
        rest = series[~series["product_id"].isin(fitted)]
        if len(rest):
            for origin, predicted in super().backtest(rest, origins, horizon).items():
                out[origin].append(predicted)
        return {origin: pd.concat(frames, ignore_index=True) for origin, frames in out.items()}


def _rows(predicted: pd.DataFrame) -> pd.DataFrame:
    """statsforecast's output (unique_id, ds, then the model's column) as prediction rows, band-free: the
    pipeline's conformal calibration gives the interval."""
    yhat = predicted[predicted.columns[-1]].to_numpy(dtype=float)  # the model's alias
    yhat = np.nan_to_num(yhat, nan=0.0)
    return pd.DataFrame(
        {
            "product_id": predicted["unique_id"].to_numpy(),
            "period_start": predicted["ds"].to_numpy(),
            "yhat": yhat,
            "yhat_lower": yhat,
            "yhat_upper": yhat,
        }
    )
