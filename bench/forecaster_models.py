"""One fit + forecast of each default forecaster on the demo history: where the forecaster's time goes.

Input as bench/forecaster_speed.py (the demo generator's clean sales lines as fct_sales_daily, its
catalogue), aggregated to weeks and limited to the series the backtest fits (not thin), with the demand
classes that decide which statistical model fits which series. Each model of `default_models` fits the
whole history once and forecasts 8 weeks; the backtest pays this about once per origin (AutoARIMA searches
its orders once, at the oldest origin, and refits them at the later ones: both are timed). `--n-jobs 1` against
the default (every core) shows what spreading the statsforecast models and Prophet over the cores buys.
numba's first compilation is paid before timing (one throw-away fit of each statistical kind).

`--lightgbm-threads` instead fits LightGBM alone on growing parts of the large world, on one thread and on
every core: below some number of training rows a second thread costs more than it brings.

Usage: .venv/bin/python bench/forecaster_models.py [--n-jobs 1] [--prophet-top-n 20] [--lightgbm-threads]
"""

from __future__ import annotations

import argparse
import os
import time

from forecaster_speed import demo_inputs  # bench/ is on sys.path when a script here runs

from ml.forecast import EnsembleForecaster, aggregate_sales, demand_classes
from ml.forecast.backtest import thin_products
from ml.forecast.lightgbm_model import LightGBMGlobalForecaster
from ml.forecast.pipeline import default_models
from ml.forecast.series import decide_calendar
from ml.forecast.statistical import StatisticalForecaster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--prophet-top-n", type=int, default=20)  # Settings.forecast_prophet_top_n
    parser.add_argument("--lightgbm-threads", action="store_true", help="LightGBM on 1 thread vs all, by size")
    args = parser.parse_args()
    if args.lightgbm_threads:
        lightgbm_threads()
        return
    daily, products = demo_inputs("demo")
    history = aggregate_sales(daily, "W", decide_calendar(daily, "W", "auto"))
    rich = history[~history["product_id"].isin(thin_products(history, 8, 3))]
    classes = demand_classes(rich)
    small = rich[rich["product_id"].isin(rich["product_id"].unique()[:5])]
    for model in default_models("W", products, args.prophet_top_n, args.n_jobs, classes):
        if not isinstance(model, EnsembleForecaster):  # compile numba, import Prophet: not paid each night
            model.fit(small).predict(1)
    models = default_models("W", products, args.prophet_top_n, args.n_jobs, classes)
    weeks = rich["period_start"].nunique()
    print(f"{rich['product_id'].nunique()} weekly series x {weeks} weeks, n_jobs {args.n_jobs}")
    print("| model | series | fit + forecast |\n|---|---|---|")
    for model in models:
        if isinstance(model, EnsembleForecaster):
            continue  # the backtest combines its members' forecasts instead of fitting it
        started = time.perf_counter()
        predicted = model.fit(rich).predict(8)
        seconds = time.perf_counter() - started
        print(f"| {model.name} | {predicted['product_id'].nunique()} | {seconds:.2f} s |", flush=True)
        if isinstance(model, StatisticalForecaster) and model.arima_orders:
            started = time.perf_counter()  # the backtest's later origins and the final fit refit those orders
            predicted = model.fit(rich).predict(8)
            seconds = time.perf_counter() - started
            print(f"| {model.name}, refit of its orders | {predicted['product_id'].nunique()} | {seconds:.2f} s |")


def lightgbm_threads() -> None:
    """One LightGBM fit + forecast on the first N weekly series of the large world, one thread against every
    core, twice each: where ml.forecast.lightgbm_model.ROWS_PER_THREAD comes from."""
    daily, products = demo_inputs("large")
    history = aggregate_sales(daily, "W", decide_calendar(daily, "W", "auto"))
    ids = history["product_id"].unique()
    cores = len(os.sched_getaffinity(0))
    print(f"| series | training rows | 1 thread | {cores} threads |\n|---|---|---|---|")
    for n_series in (500, 1000, 2000, len(ids)):
        part = history[history["product_id"].isin(ids[:n_series])]
        seconds = {}
        for threads in (1, cores, 1, cores):
            model = LightGBMGlobalForecaster("W", products, n_jobs=threads)
            started = time.perf_counter()
            model.fit(part).predict(8)
            seconds.setdefault(threads, []).append(time.perf_counter() - started)
        one, every = ("/".join(f"{s:.2f}" for s in seconds[t]) + " s" for t in (1, cores))
        print(f"| {n_series:,} | {len(part):,} | {one} | {every} |", flush=True)


if __name__ == "__main__":
    main()
