"""Offline model quality per data profile: every recommender candidate and forecaster, and the served choice.

For each export-shaped profile (orchestration/demo/profiles.py, demo scale) and the demo world
(`optimum generate --scale demo`) the landing files go through the real ingest and dbt build into a fresh
embedded warehouse, then the recommender and the forecaster train as the pipeline trains them. A demo world
already materialized can be read instead (--demo-home).

Recommender: test NDCG@10 of each candidate (choice and recency made on validation inside the training part),
the served choice, the stronger popularity and EASE. Forecaster: MASE on the held-out last origin of every
model, the served choice, seasonal naive and a 4-period mean, with the empirical coverage of each one's
conformal 80% band on that origin (calibrated on the earlier origins only).

Public data: eurostat_elec_equip, a monthly series statsmodels ships in its wheel (nothing is downloaded),
gets the forecaster row; no installed package ships a public retail clickstream or a multi-product sales log.

Usage:
  .venv/bin/python bench/model_quality.py [--profiles long_history monthly_export ... demo eurostat_elec_equip]
      [--demo-home HOME]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from ml.forecast import MovingAverage, rolling_origin_backtest
from ml.forecast.intervals import conformal_quantiles, held_out_coverage
from ml.training import train_forecaster, train_recommender
from optimum.settings import Settings
from orchestration.demo.generate import generate_demo_data
from orchestration.demo.profiles import PROFILES, generate_profile
from orchestration.warehouse import Warehouse

# The forecast grain and horizon a customer with that export would set (OPTIMUM_FORECAST_FREQ / _HORIZON).
FORECAST_SETUP = {
    "demo": ("W", 8),
    "long_history": ("W", 8),
    "monthly_export": ("M", 12),
    "weekly_short": ("W", 8),
    "intermittent": ("W", 8),
}
REPO = Path(__file__).resolve().parent.parent


def build_warehouse(profile: str, root: Path) -> Settings:
    """Generate the profile (or the demo world) and run the real ingest and dbt build on it (a subprocess,
    its own state)."""
    if profile == "demo":
        landing = generate_demo_data(root / profile, scale="demo").out_dir / "landing"
    else:
        landing = generate_profile(root / profile, profile, scale="demo").landing_dir
    home = root / f"{profile}_home"
    env = os.environ | {"OPTIMUM_HOME": str(home), "OPTIMUM_LANDING_DIR": str(landing)}
    command = [sys.executable, "-m", "orchestration.cli", "run", "--job", "ingest_and_warehouse"]
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return Settings(home=home, landing_dir=landing)


def report(name: str, settings: Settings, prophet_top_n: int) -> None:
    warehouse = Warehouse.from_settings(settings)
    freq, horizon = FORECAST_SETUP[name]
    print(f"\n## {name}")

    started = time.perf_counter()
    events = warehouse.query("SELECT * FROM marts.fct_interactions")
    recommender = train_recommender(events)
    table = recommender.candidates.drop(columns="params")
    print(
        f"\nrecommender: {len(events):,} events, {events['user_id'].nunique():,} users, "
        f"{events['product_id'].nunique():,} items; served {recommender.key} ({recommender.recency.label}); "
        f"baseline {recommender.baseline}; {time.perf_counter() - started:.0f} s"
    )
    columns = ["model", "recency", "validation_ndcg@10", "ndcg@10", "recall@20", "hr@10", "coverage@10"]
    print(table[columns].round(4).to_string())
    served, baseline = table.loc[recommender.key, "ndcg@10"], table.loc[recommender.baseline, "ndcg@10"]
    ease = table.loc["ease", "ndcg@10"] if "ease" in table.index else float("nan")
    print(f"| {name} | {recommender.key} | {served:.4f} | {baseline:.4f} ({recommender.baseline}) | {ease:.4f} |")
    print("counts:", recommender.counts, flush=True)
    daily = warehouse.query("SELECT * FROM marts.fct_sales_daily")
    products = warehouse.query("SELECT * FROM marts.dim_products")
    report_forecaster(name, daily, products, freq, horizon, prophet_top_n)


def eurostat_elec_equip() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A public monthly series that ships inside an installed wheel (statsmodels.datasets, nothing downloaded):
    Eurostat's euro-area turnover index of electrical equipment manufacturing, 1995-01 .. 2016-05, not
    seasonally adjusted, as an export of one product stamped on each month's first day (fct_sales_daily's
    columns)."""
    from statsmodels.datasets import elec_equip

    series = elec_equip.load().data.iloc[:, 0]
    daily = pd.DataFrame(
        {
            "product_id": "EU-ELEC-EQUIP",
            "sales_date": series.index.date,
            "quantity": series.to_numpy(dtype=float),
            "revenue": series.to_numpy(dtype=float),
            "n_orders": 1,
            "avg_unit_price": 1.0,
        }
    )
    products = pd.DataFrame(
        {"product_id": ["EU-ELEC-EQUIP"], "category": ["electrical"], "price": [1.0], "stock_on_hand": [float("nan")]}
    )
    return daily, products


PUBLIC = {"eurostat_elec_equip": (eurostat_elec_equip, "M", 12)}


def report_forecaster(
    name: str, daily: pd.DataFrame, products: pd.DataFrame, freq: str, horizon: int, prophet_top_n: int
) -> None:
    started = time.perf_counter()
    forecaster = train_forecaster(daily, products, freq, horizon, prophet_top_n)
    result = forecaster.result
    seconds = time.perf_counter() - started
    rich = result.history[~result.history["product_id"].isin(result.selection.query("thin_history")["product_id"])]
    four_period_mean = MovingAverage(freq, window=4)  # the naive alternative a planner uses, at any grain
    mean_4 = rolling_origin_backtest(rich, [four_period_mean], 3, horizon, freq)
    last = mean_4.errors["origin"].max()
    mean_4_mase = mean_4.errors[mean_4.errors["origin"] == last]["mase"].mean()
    is_last = mean_4.predictions["origin"] == last
    quantiles = conformal_quantiles(mean_4.predictions[~is_last])  # calibrated on the origin before the last
    mean_4_coverage = held_out_coverage(mean_4.predictions[is_last], quantiles).get(four_period_mean.name)
    held_out = result.held_out.set_index("model")
    print(
        f"\nforecaster: {daily['product_id'].nunique()} series, {freq}, horizon {horizon}; "
        f"calendar {result.calendar.rule} ({result.calendar.first_period.date()} .. "
        f"{result.calendar.last_period.date()}; dropped: {'; '.join(result.calendar.dropped) or 'none'}); "
        f"{int(result.selection['short_history'].sum())} short-history series; {seconds:.0f} s"
    )
    print(held_out.round(4).to_string())
    print(result.selection.groupby("demand_class")["model_name"].agg(["first", "size"]).to_string())
    served = ", ".join(f"{c}: {m}" for c, m in result.selection.groupby("demand_class")["model_name"].first().items())
    print(
        f"| {name} | {held_out.loc['chosen', 'mase']:.3f} ({served}) | {held_out.loc['seasonal_naive', 'mase']:.3f} | "
        f"{mean_4_mase:.3f} | {held_out.loc['chosen', 'coverage']:.3f} | "
        f"{held_out.loc['seasonal_naive', 'coverage']:.3f} | {mean_4_coverage:.3f} |"
    )
    per_model = ", ".join(f"{m} {r['mase']:.3f} / {r['coverage']:.3f}" for m, r in held_out.iterrows())
    print(f"per model (held-out MASE / 80% coverage): {per_model}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = [*PROFILES, "demo", *PUBLIC]
    parser.add_argument("--profiles", nargs="*", default=choices, choices=choices)
    parser.add_argument("--demo-home", help="OPTIMUM_HOME of an already materialized demo world (else: built)")
    parser.add_argument("--prophet-top-n", type=int, default=20)
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    with tempfile.TemporaryDirectory(prefix="optimum-profiles-") as root:
        for profile in args.profiles:
            if profile in PUBLIC:  # a forecaster row only: no interactions come with it
                load, freq, horizon = PUBLIC[profile]
                print(f"\n## {profile}")
                report_forecaster(profile, *load(), freq, horizon, args.prophet_top_n)
                continue
            started = time.perf_counter()
            if profile == "demo" and args.demo_home:
                settings = Settings(home=Path(args.demo_home))
            else:
                settings = build_warehouse(profile, Path(root))
            print(f"\n{profile}: warehouse {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}")
            report(profile, settings, args.prophet_top_n)


if __name__ == "__main__":
    main()
