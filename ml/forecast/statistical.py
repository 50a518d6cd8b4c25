"""Per-series statistical models from Nixtla's statsforecast: the ones retail demand planning uses.

AutoARIMA (SARIMA), AutoETS (exponential smoothing) and AutoTheta for regular demand; Croston-SBA, TSB,
ADIDA and IMAPA for intermittent demand (many periods without a sale). statsforecast compiles them with
numba and fits thousands of series in seconds, where Prophet takes a second or so each.

Short history: a series with fewer than two seasons of periods cannot identify a seasonal component (a
seasonal ARIMA or ETS needs at least two cycles to tell the season from the level), so the seasonal models
fit such series with season_length 1 (non-seasonal); `seasonal_ids` says which series got a season.
Weekly data: ETS holds at most ETS_MAX_SEASON seasonal states, so AutoETS fits weeks without a season.
Intervals are left to the pipeline's conformal calibration on backtest residuals (ml.forecast.intervals).
"""

from __future__ import annotations

import os
from typing import NamedTuple

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
# AutoARIMA is statsforecast's slowest model by far: searched once and refitted at the later origins, it adds
# 74 s wall (139 CPU-s) to the large world's forecaster for its 1,016 regular-demand series on 2 cores
# (bench/forecaster_speed.py --scale large). It joins the candidates where the regular-demand series are at
# most this many, which keeps its share within the 15-minute nightly budget (BENCHMARKS.md).
ARIMA_MAX_SERIES = 3_000
# statsforecast compiles its models with numba on first use (a minute on a busy 2-core machine) and caches
# the machine code on disk only when asked: ask, so only the first process after an install pays it.
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
MIN_PERIODS = 10  # below this a series gets its historic mean instead of a model fit
MIN_SEASONS = 2  # full seasons of history a series needs before a model may fit a seasonal component
# ETS keeps one state per period of the season and, in statsforecast as in R's ets(), forecasts nothing with
# more than 24 of them: given 52 weeks, AutoETS optimises every seasonal candidate only to discard it and
# lands on the non-seasonal family R's ets() fits directly ("seasonality will be ignored"), several times
# slower (bench/forecaster_models.py --n-jobs 1, 151 demo series: 5.41 s with the season in wave 5, 0.88 s
# without, on a slower machine). Above this season length AutoETS is fitted non-seasonal.
ETS_MAX_SEASON = 24
# AutoARIMA refits an order searched on at least a season of history, rather than searching again, while the
# history has grown by less than this share of what the search saw (and by less than a season): the demo's
# later origins add 10% and 20% to its 80 weeks; the monthly export's add 50-100% (StatisticalForecaster).
REFIT_GROWTH = 0.25


# The seasonal kinds search and optimise per series (on one core, bench/forecaster_models.py: AutoARIMA's search
# ~120 ms a weekly demo series, AutoTheta ~15 ms, AutoETS ~6 ms on weeks) and are spread over the cores; the
# intermittent ones are closed-form smoothers, faster than a worker's start.
# A worker pays the pickling of its series and, once a process, its start (~5 CPU-s importing statsforecast):
# below this many series per worker it does not pay.
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


class ArimaOrder(NamedTuple):
    """The structure AutoARIMA's search chose for a series; refitting it re-estimates only the coefficients."""

    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int]
    season_length: int
    include_mean: bool
    include_drift: bool

    @classmethod
    def of(cls, fitted) -> ArimaOrder:
        """The order of a fitted statsforecast AutoARIMA (its `arma` is p, q, P, Q, season, d, D)."""
        p, q, P, Q, season, d, D = (int(v) for v in fitted.model_["arma"])
        coef = fitted.model_["coef"]
        return cls((p, d, q), (P, D, Q), season, "intercept" in coef, "drift" in coef)

    def model(self):
        from statsforecast.models import ARIMA

        return ARIMA(**self._asdict(), alias="autoarima")


class StatisticalForecaster(Forecaster):
    """One statsforecast model fitted per series; `kind` is one of STATISTICAL_KINDS and names its rows.

    `product_ids` (None: all) limits it to those series, the others get no forecast from it and other
    models cover them: forecast_demand passes the products of the demand classes it was DESIGNED_FOR.
    `n_jobs` (None: every core this process may use) bounds the processes the SEASONAL_KINDS spread over:
    this one and n_jobs - 1 pool workers (`_run`).

    AutoARIMA searches a series' orders on the first history this instance fits it on (the backtest's
    oldest origin); later fits (later origins, the final fit) re-estimate the coefficients of those orders
    on their longer history while it adds little to what the search saw (`_still_fits`), and search again
    once it adds more, the series grows into two seasons, or the search saw less than a season. The search
    fits a dozen or more models a series where a refit fits one (4-4.5x cheaper,
    bench/forecaster_models.py). On two years of weeks an origin adds 8 weeks to 80; on a monthly export
    it adds a year to one or two: reusing such orders held the monthly export's AutoARIMA at 1.46 held-out
    MASE (2.36 across its growing into a season) against 0.84 searched afresh, and an order searched on 28
    weeks before a demand shift and refit after it led the retrain of tests/integration/test_monitoring_loop
    to a choice that lost to seasonal naive (2.00 against 1.95; searched afresh, 1.78).
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
        # AutoARIMA's search per (series, season length): the order, and the periods of history it saw.
        self._searched: dict[tuple[str, int], tuple[ArimaOrder, int]] = {}

    def _fit(self, history: pd.DataFrame) -> None:
        if self.product_ids is not None:
            history = history[history["product_id"].isin(self.product_ids)]
        self._ids, periods, wide = quantity_matrix(history)
        self._periods, self._wide = periods, wide

    @property
    def arima_orders(self) -> dict[tuple[str, int], ArimaOrder]:
        """The orders AutoARIMA's search chose, by (product id, season length); empty for other kinds."""
        return {key: order for key, (order, _) in self._searched.items()}

    def _still_fits(self, searched: int, periods: int) -> bool:
        """An order searched on at least a season of periods is refit on `periods` while they add less than a
        season and less than REFIT_GROWTH of the history the search saw; one searched on less is not trusted
        beyond the fit it was searched for."""
        season = SEASON_LENGTH[self.freq]
        return searched >= season and periods - searched < min(season, REFIT_GROWTH * searched)

    def _workers(self, n_series: int) -> int:
        """How many parts n_series are split into, each fitted by a worker process (1: in this process)."""
        if self.kind not in SEASONAL_KINDS:
            return 1
        return max(1, min(usable_cores(self.n_jobs), n_series // SERIES_PER_WORKER))

    def _processes(self) -> int:
        """This process and the pool's workers: as many as the parts of all this model's series, so that its
        smaller calls (the non-seasonal group, the refits) reuse the pool instead of resizing it (a resize
        stops workers or starts new ones), and a many-core machine starts no worker it will not use."""
        return self._workers(len(self.product_ids) if self.product_ids is not None else len(self._ids))

    def start_workers(self) -> bool:
        if self.product_ids is None or self._processes() == 1:
            return False
        _start_pool(self._processes())
        return True

    def _season_length(self) -> int:
        """The season this kind can model at this frequency (1: none)."""
        season = SEASON_LENGTH[self.freq]
        if self.kind not in SEASONAL_KINDS or (self.kind == "autoets" and season > ETS_MAX_SEASON):
            return 1
        return season

    def seasonal_ids(self) -> pd.Index:
        """Series fitted with a seasonal component: a kind that can model the season, two full seasons of history."""
        if self._season_length() == 1:
            return pd.Index([])
        length = (~np.isnan(self._wide)).sum(axis=1)
        return self._ids[length >= MIN_SEASONS * SEASON_LENGTH[self.freq]]

    def _predict(self, horizon: int) -> pd.DataFrame:
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
        for group, season_length in ((seasonal, self._season_length()), (~seasonal & ~tiny, 1)):
            if not group.any():
                continue
            if self.kind == "autoarima":
                frames.extend(self._arima(self._ids[group], self._wide[group], season_length, horizon))
            else:
                model, rows = _model(self.kind, season_length), np.flatnonzero(group)
                workers = self._workers(len(rows))
                calls = [
                    (model, self._ids[chunk], self._periods, self._wide[chunk], self.freq, horizon)
                    for chunk in np.array_split(rows, workers)
                ]
                frames.extend(frame for frame, _ in _run(calls, self._processes()))
        out = pd.concat(frames, ignore_index=True)
        out["yhat"] = out["yhat"].fillna(0.0)
        return out.assign(yhat_lower=out["yhat"], yhat_upper=out["yhat"])

    def _arima(self, ids: pd.Index, wide: np.ndarray, season_length: int, horizon: int) -> list[pd.DataFrame]:
        """AutoARIMA's order search for the series this instance has not searched at this season length, or
        whose history outgrew that search; the others refit the orders found then, coefficients re-estimated
        (the search as fallback if that fails)."""
        search = _model("autoarima", season_length, high_frequency=SEASON_LENGTH[self.freq] > 12)
        length = (~np.isnan(wide)).sum(axis=1)
        previous = [self._searched.get((product, season_length)) for product in ids]
        refit = np.array([p is not None and self._still_fits(p[1], n) for p, n in zip(previous, length, strict=True)])
        searched = np.flatnonzero(~refit)
        by_order: dict[ArimaOrder, list[int]] = {}
        for row in np.flatnonzero(refit):
            by_order.setdefault(previous[row][0], []).append(row)
        # The search's series split evenly over the workers, then one call per refit order; _run shares them out.
        workers = self._workers(len(ids))
        calls = [
            (search, ids[chunk], self._periods, wide[chunk], self.freq, horizon)
            for chunk in np.array_split(searched, workers)
            if len(chunk)
        ] + [
            (order.model(), ids[rows], self._periods, wide[rows], self.freq, horizon, search)
            for order, rows in sorted(by_order.items(), key=lambda item: -len(item[1]))
        ]
        results = _run(calls, self._processes())
        periods = dict(zip(ids, length, strict=True))
        for _, fitted in results[: len(calls) - len(by_order)]:
            for product, model in fitted.items():
                self._searched[(product, season_length)] = (ArimaOrder.of(model), periods[product])
        return [frame for frame, _ in results]


def _run(calls: list[tuple], processes: int) -> list[tuple[pd.DataFrame, pd.Series]]:
    """_statsforecast(*call) for each call, in order, on `processes` processes: this one and a pool of the
    others, the calls shared out by their number of series. The pool is loky's (joblib's process pool): fresh
    interpreters kept warm between calls, never processes forked from this one. Forking a process that runs
    threads (a Dagster step, a pytest-xdist worker, LightGBM's OpenMP pool) copies into the child whatever
    state another thread held: statsforecast's own fork Pool hung a CI run that way for 20 minutes."""
    shares = _shares([len(call[1]) for call in calls], processes)
    if len(shares) == 1:
        return _fit_all(calls)
    pool = _pool(processes - 1)
    futures = [pool.submit(_fit_all, [calls[i] for i in share]) for share in shares[1:]]
    results = dict(zip(shares[0], _fit_all([calls[i] for i in shares[0]]), strict=True))
    for share, future in zip(shares[1:], futures, strict=True):
        results.update(zip(share, future.result(), strict=True))
    return [results[i] for i in range(len(calls))]


def _shares(sizes: list[int], processes: int) -> list[list[int]]:
    """Indices of `sizes` in at most `processes` shares of about equal total: the largest first, each to the
    lightest share so far."""
    shares: list[list[int]] = [[] for _ in range(min(processes, len(sizes)))]
    totals = [0] * len(shares)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        lightest = totals.index(min(totals))
        shares[lightest].append(i)
        totals[lightest] += sizes[i]
    return shares


def _fit_all(calls: list[tuple]) -> list[tuple[pd.DataFrame, pd.Series]]:
    return [_statsforecast(*call) for call in calls]


def _pool(workers: int):
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers)


def _start_pool(processes: int) -> None:
    """Start the pool's workers without waiting for them: each imports statsforecast (~5 CPU-s) meanwhile."""
    pool = _pool(processes - 1)
    for _ in range(processes - 1):
        pool.submit(_load_statsforecast)


def _load_statsforecast() -> None:
    from statsforecast import StatsForecast, models  # noqa: F401


def _statsforecast(
    model,
    ids: pd.Index,
    periods: pd.DatetimeIndex,
    wide: np.ndarray,
    freq: Freq,
    horizon: int,
    fallback=None,
) -> tuple[pd.DataFrame, pd.Series]:
    """`model` fitted on each row of `wide` (series x periods, NaN before a series starts) by statsforecast
    in this process: the forecast (product_id, period_start, yhat) and, for AutoARIMA, its fitted
    models by product id (to read their orders; an empty Series for other models, which are not kept)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA

    started = ~np.isnan(wide)
    long = pd.DataFrame(
        {
            "unique_id": np.repeat(ids.to_numpy(), started.sum(axis=1)),
            "ds": np.tile(periods.to_numpy(), len(wide))[started.ravel()],
            "y": wide[started],
        }
    )
    engine = StatsForecast(models=[model], freq=PERIOD_FREQ[freq], fallback_model=fallback)
    if isinstance(model, AutoARIMA):
        predicted = engine.fit_predict(h=horizon, df=long)
        fitted = pd.Series(engine.fitted_[:, 0], index=engine.uids)
    else:
        predicted, fitted = engine.forecast(df=long, h=horizon), pd.Series(dtype=object)
    value = predicted.columns[-1]  # the model's alias
    frame = pd.DataFrame(
        {
            "product_id": predicted["unique_id"].to_numpy(),
            "period_start": predicted["ds"].to_numpy(),
            "yhat": predicted[value].to_numpy(dtype=float),
        }
    )
    return frame, fitted
