"""One fit + forecast of each default forecaster on the demo history: where the forecaster's time goes.

Input as bench/forecaster_speed.py (the demo generator's clean sales lines as fct_sales_daily, its
catalogue), aggregated to weeks and limited to the series the backtest fits (not thin), with the demand
classes that decide which statistical model fits which series. Each model of `default_models` fits the
whole history once and forecasts 8 weeks; the backtest pays this about once per origin. `--n-jobs 1` against
the default (every core) shows what spreading the statsforecast models and Prophet over the cores buys.
numba's first compilation is paid before timing (one throw-away fit of each statistical kind).

Usage: .venv/bin/python bench/forecaster_models.py [--n-jobs 1] [--prophet-top-n 20]
"""

from __future__ import annotations

import argparse
import time

from forecaster_speed import demo_inputs  # bench/ is on sys.path when a script here runs

from ml.forecast import EnsembleForecaster, aggregate_sales, demand_classes
from ml.forecast.backtest import thin_products
from ml.forecast.pipeline import default_models
from ml.forecast.series import decide_calendar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--prophet-top-n", type=int, default=20)  # Settings.forecast_prophet_top_n
    args = parser.parse_args()
    daily, products = demo_inputs("demo")
    history = aggregate_sales(daily, "W", decide_calendar(daily, "W", "auto"))
    rich = history[~history["product_id"].isin(thin_products(history, 8, 3))]
    classes = demand_classes(rich)
    models = default_models("W", products, args.prophet_top_n, args.n_jobs, classes)
    small = rich[rich["product_id"].isin(rich["product_id"].unique()[:5])]
    for model in models:  # compile numba, import Prophet: not what a nightly run pays each time
        if not isinstance(model, EnsembleForecaster):
            model.fit(small).predict(1)
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


if __name__ == "__main__":
    main()
